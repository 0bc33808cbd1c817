"""Calibration kernels timed inside network blocks: the context a layer really runs in.

A kernel's time in a forward pass depends on what ran just before it: its input was just written by the
layer before (hot in cache), its weights were last read one forward ago, and a small op that follows a
large one pays for cache misses on the interpreter's and dispatcher's own data (a view costs 1.8 us in
a hot loop here and 37 us right after a 256-channel 3x3 convolution on a 56x56 map). So most kernels
are timed in random *blocks* built the way CNNs build them -- ShuffleNet V1/V2 units (both layouts, with
grouped 1x1 convs, 3/5/7 depthwise kernels, SE), inverted residuals with ReLU/ReLU6/h-swish/SiLU and SE,
ResNet basic and bottleneck blocks (grouped 3x3 as ResNeXt/RegNet), DenseNet layers, stems and heads --
with the data flowing from op to op. Every op call is timed on its own (the same Python call a network
makes); a block runs round after round and each op keeps its median, the way nn-Meter measures kernels
in their fused context (conv + BN + activation here run as three eager kernels, timed in that order).

No network is timed: blocks are random, and the held-out networks are never used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

State = dict[str, Any]
Step = Callable[[State], None]


class Program:
    """A block as a list of steps, one op call each, over a dict of named tensors (the block's data flow)."""

    def __init__(self, name: str, inputs: dict[str, tuple[int, ...]]) -> None:
        self.name = name
        self.inputs = inputs
        self.steps: list[Step] = []
        self._fresh: dict[str, torch.Tensor] = {}

    def start(self) -> State:
        """The block's inputs, rewritten in place (as the layer before the block would have)."""
        with torch.inference_mode():  # the block always runs in inference mode, as a timed forward does
            if not self._fresh:
                self._fresh = {k: torch.randn(shape) for k, shape in self.inputs.items()}
            for t in self._fresh.values():
                t.mul_(1.0)
        return dict(self._fresh)

    def add(self, step: Step) -> None:
        self.steps.append(step)

    # -- building blocks: each appends one op call ---------------------------------------------------

    def conv(self, src: str, dst: str, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
             bias: bool = False) -> None:
        w = torch.randn(cout, cin // groups, k, k) * (2.0 / (cin // groups * k * k)) ** 0.5
        b = torch.randn(cout) * 0.1 if bias else None
        pad = k // 2
        self.add(lambda s: s.__setitem__(dst, F.conv2d(s[src], w, b, stride, pad, 1, groups)))

    def bn(self, name: str, c: int) -> None:
        mean, var = torch.randn(c) * 0.1, torch.rand(c) + 0.5
        weight, bias = torch.rand(c) + 0.5, torch.randn(c) * 0.1
        self.add(lambda s: s.__setitem__(name, F.batch_norm(s[name], mean, var, weight, bias, False, 0.1, 1e-5)))

    def act(self, name: str, kind: str) -> None:
        fn = _ACTS[kind]
        self.add(lambda s: s.__setitem__(name, fn(s[name])))

    def conv_bn(self, src: str, dst: str, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
                act: str | None = "relu_") -> None:
        self.conv(src, dst, cin, cout, k, stride, groups)
        self.bn(dst, cout)
        if act:
            self.act(dst, act)

    def shuffle(self, name: str, c: int, h: int, groups: int) -> None:
        """torchvision's channel shuffle: view, transpose, contiguous (the copy), view."""
        self.add(lambda s: s.__setitem__(name, s[name].view(1, groups, c // groups, h, h)))
        self.add(lambda s: s.__setitem__(name, s[name].transpose(1, 2)))
        self.add(lambda s: s.__setitem__(name, s[name].contiguous()))
        self.add(lambda s: s.__setitem__(name, s[name].view(1, c, h, h)))

    def se(self, name: str, c: int, gate: str, inner_act: str = "relu") -> None:
        mid = max(8, c // 4)
        self.add(lambda s: s.__setitem__("se", F.adaptive_avg_pool2d(s[name], 1)))
        self.conv("se", "se", c, mid, bias=True)
        self.act("se", inner_act)
        self.conv("se", "se", mid, c, bias=True)
        self.act("se", gate)
        self.add(lambda s: s.__setitem__(name, s[name] * s["se"]))


_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu_": lambda x: F.relu(x, inplace=True), "relu": F.relu,
    "hardtanh_": lambda x: F.hardtanh(x, 0.0, 6.0, True), "hardswish_": lambda x: F.hardswish(x, True),
    "silu_": lambda x: F.silu(x, True), "sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid,
}


def _even(c: int, multiple: int = 2) -> int:
    return max(multiple, c // multiple * multiple)


def shufflenet_v2_unit(c: int, h: int, k: int, groups: int, down: bool, official: bool, se: bool) -> Program:
    """Fig. 3(c) (basic) or 3(d) (down-sampling) with grouped 1x1 convs and a k x k depthwise conv."""
    half = _even(c // 2, 2 * groups) // 1
    c = 2 * half
    cin = c // 2 if down else c
    p = Program(f"v2unit c{c} h{h} k{k} g{groups}{' down' if down else ''}{' official' if official else ''}",
                {"x": (1, cin, h, h)})
    ho = (h + 2 * (k // 2) - k) // 2 + 1 if down else h
    if down:
        p.conv_bn("x", "a", cin, cin, k, 2, cin, act=None)
        p.conv_bn("a", "a", cin, half, 1)
        src, main_in = "x", cin
    elif official:
        p.add(lambda s: s.__setitem__("x", s["x"].reshape(c // 2, 2, h * h)))
        p.add(lambda s: s.__setitem__("x", s["x"].permute(1, 0, 2)))
        p.add(lambda s: s.__setitem__("x", s["x"].reshape(2, 1, c // 2, h, h)))
        p.add(lambda s: s.__setitem__("a", s["x"][0]))
        p.add(lambda s: s.__setitem__("b", s["x"][1]))
        src, main_in = "b", half
    else:
        p.add(lambda s: s.update(zip(("a", "b"), s["x"].chunk(2, dim=1), strict=True)))
        src, main_in = "b", half
    g1 = groups if main_in % groups == 0 else 1
    p.conv_bn(src, "y", main_in, half, 1, 1, g1)
    if groups > 1:
        p.shuffle("y", half, h, groups)
    p.conv_bn("y", "y", half, half, k, 2 if down else 1, half, act=None)
    p.conv_bn("y", "y", half, half, 1, 1, groups)
    if se:
        p.se("y", half, "sigmoid")
    p.add(lambda s: s.__setitem__("out", torch.cat((s["a"], s["y"]), 1)))
    if not official:  # the official layout's shuffle is the next unit's split (views, no copy)
        p.shuffle("out", c, ho, 2)
    return p


def inverted_residual(c: int, h: int, expand: int, k: int, stride: int, act: str, se: str | None,
                      cout: int) -> Program:
    """MobileNet V2 / V3 / EfficientNet block: expand 1x1, k x k depthwise, [SE], project 1x1, [add]."""
    mid = c * expand
    p = Program(f"invres c{c} h{h} e{expand} k{k} s{stride} {act}{' se' if se else ''}", {"x": (1, c, h, h)})
    src = "x"
    if expand > 1:
        p.conv_bn("x", "y", c, mid, act=act)
        src = "y"
    p.conv_bn(src, "y", mid, mid, k, stride, mid, act=act)
    if se:
        p.se("y", mid, se, "relu" if se == "hardsigmoid" else "silu_")
    p.conv_bn("y", "y", mid, cout, act=None)
    if stride == 1 and cout == c:
        p.add(lambda s: s.__setitem__("y", s["y"] + s["x"]))
    return p


def resnet_block(c: int, h: int, bottleneck: bool, groups: int, stride: int, width: int) -> Program:
    """ResNet basic block or bottleneck (grouped 3x3 as ResNeXt / RegNet), with its projection shortcut."""
    cout = c * 2 if stride == 2 else c
    p = Program(f"resnet c{c} h{h} {'bottleneck' if bottleneck else 'basic'} g{groups} s{stride}",
                {"x": (1, c, h, h)})
    if bottleneck:
        w = _even(width, groups)
        p.conv_bn("x", "y", c, w)
        p.conv_bn("y", "y", w, w, 3, stride, groups)
        p.conv_bn("y", "y", w, cout, act=None)
    else:
        p.conv_bn("x", "y", c, cout, 3, stride)
        p.conv_bn("y", "y", cout, cout, 3, act=None)
    short = "x"
    if stride == 2 or cout != c:
        p.conv_bn("x", "z", c, cout, 1, stride, act=None)
        short = "z"
    p.add(lambda s: s.__setitem__("y", s["y"].add_(s[short])))
    p.act("y", "relu_")
    return p


def shufflenet_v1_unit(c: int, h: int, groups: int, down: bool) -> Program:
    """ShuffleNet V1 unit (V1 paper Fig. 2b/c): 1x1 GConv, shuffle, 3x3 DW, 1x1 GConv, add or concat."""
    c = _even(c, 4 * groups)
    mid = _even(c // 4, groups)
    p = Program(f"v1unit c{c} h{h} g{groups}{' down' if down else ''}", {"x": (1, c, h, h)})
    p.conv_bn("x", "y", c, mid, 1, 1, groups)
    p.shuffle("y", mid, h, groups)
    p.conv_bn("y", "y", mid, mid, 3, 2 if down else 1, mid, act=None)
    p.conv_bn("y", "y", mid, c, 1, 1, groups, act=None)
    if down:
        p.add(lambda s: s.__setitem__("z", F.avg_pool2d(s["x"], 3, 2, 1)))
        p.add(lambda s: s.__setitem__("y", torch.cat((s["z"], s["y"]), 1)))
    else:
        p.add(lambda s: s.__setitem__("y", s["x"] + s["y"]))
    p.act("y", "relu_")
    return p


def dense_layers(c: int, h: int, growth: int, layers: int, transition: bool) -> Program:
    """DenseNet layers (BN-ReLU-1x1-BN-ReLU-3x3 on the concat of all earlier maps) [and a transition]."""
    p = Program(f"dense c{c} h{h} growth{growth} x{layers}", {"x": (1, c, h, h)})
    names = ["x"]
    width = c
    for i in range(layers):
        srcs = tuple(names)
        p.add(lambda s, srcs=srcs: s.__setitem__("cat", torch.cat([s[n] for n in srcs], 1)))
        p.bn("cat", width)
        p.act("cat", "relu_")
        p.conv("cat", "y", width, 4 * growth)
        p.bn("y", 4 * growth)
        p.act("y", "relu_")
        p.conv("y", f"f{i}", 4 * growth, growth, 3)
        names.append(f"f{i}")
        width += growth
    if transition:
        srcs = tuple(names)
        p.add(lambda s: s.__setitem__("cat", torch.cat([s[n] for n in srcs], 1)))
        p.bn("cat", width)
        p.act("cat", "relu_")
        p.conv("cat", "t", width, width // 2)
        p.add(lambda s: s.__setitem__("t", F.avg_pool2d(s["t"], 2, 2)))
    return p


def stem(side: int, c: int, k: int, pool: bool) -> Program:
    """The first conv (3 input channels, stride 2) with BN and ReLU [and the 3x3 stride-2 max pool]."""
    p = Program(f"stem {side} c{c} k{k}", {"x": (1, 3, side, side)})
    p.conv_bn("x", "y", 3, c, k, 2)
    if pool:
        p.add(lambda s: s.__setitem__("y", F.max_pool2d(s["y"], 3, 2, 1)))
    return p


def head(c: int, h: int, final: int, classes: int, adaptive: bool) -> Program:
    """Last 1x1 conv, global pool, flatten, classifier."""
    p = Program(f"head c{c} h{h} final{final}", {"x": (1, c, h, h)})
    p.conv_bn("x", "y", c, final)
    if adaptive:
        p.add(lambda s: s.__setitem__("y", F.adaptive_avg_pool2d(s["y"], 1)))
        p.add(lambda s: s.__setitem__("y", torch.flatten(s["y"], 1)))
    else:
        p.add(lambda s: s.__setitem__("y", s["y"].mean((2, 3))))
    w, b = torch.randn(classes, final) * 0.02, torch.zeros(classes)
    p.add(lambda s: s.__setitem__("y", F.linear(s["y"], w, b)))
    return p


def fire(c: int, h: int, squeeze: int, expand: int) -> Program:
    """SqueezeNet fire module: 1x1 squeeze, parallel 1x1 and 3x3 expand, concat."""
    p = Program(f"fire c{c} h{h}", {"x": (1, c, h, h)})
    p.conv("x", "s", c, squeeze, bias=True)
    p.act("s", "relu_")
    p.conv("s", "a", squeeze, expand, bias=True)
    p.act("a", "relu_")
    p.conv("s", "b", squeeze, expand, 3, bias=True)
    p.act("b", "relu_")
    p.add(lambda s: s.__setitem__("y", torch.cat((s["a"], s["b"]), 1)))
    return p


def inception(c: int, h: int, widths: tuple[int, int, int, int]) -> Program:
    """GoogLeNet-style block: 1x1, 1x1-3x3, 1x1-5x5 (3x3) and pool-1x1 branches, concat."""
    a, b, d, e = widths
    p = Program(f"inception c{c} h{h}", {"x": (1, c, h, h)})
    p.conv_bn("x", "a", c, a)
    p.conv_bn("x", "b", c, b // 2)
    p.conv_bn("b", "b", b // 2, b, 3)
    p.conv_bn("x", "d", c, d // 4)
    p.conv_bn("d", "d", d // 4, d, 3)
    p.add(lambda s: s.__setitem__("e", F.max_pool2d(s["x"], 3, 1, 1, ceil_mode=True)))
    p.conv_bn("e", "e", c, e)
    p.add(lambda s: s.__setitem__("y", torch.cat((s["a"], s["b"], s["d"], s["e"]), 1)))
    return p


def random_block(s: Any) -> Program:
    """One random block (``s``: the calibration's :class:`~shufflenet.audit.latency.benches._Shapes`)."""
    kind = s.choice(("v2", "v2", "v2", "invres", "invres", "resnet", "v1", "dense", "stem", "head", "fire",
                     "inception"))
    h = s.choice((7, 10, 12, 14, 20, 24, 28, 40, 48, 56, 80, 96, 112))
    c = s.channels(16, max(16, s.cap(h) // 2))
    if kind == "v2":
        return shufflenet_v2_unit(c, h, s.choice((3, 3, 5, 7)), s.choice((1, 1, 2, 4)), s.rng.random() < 0.3,
                                  s.rng.random() < 0.4, s.rng.random() < 0.15)
    if kind == "invres":
        act = s.choice(("relu_", "hardtanh_", "hardswish_", "silu_"))
        gate = s.choice((None, "sigmoid", "hardsigmoid"))
        c = s.channels(8, max(8, s.cap(h) // 6))
        return inverted_residual(c, h, s.choice((1, 3, 4, 6)), s.choice((3, 5, 7)), s.choice((1, 1, 2)), act,
                                 gate, c if s.rng.random() < 0.6 else s.channels(8, 2 * c))
    if kind == "resnet":
        groups = s.choice((1, 1, 2, 4, 8, 16, 32))
        return resnet_block(c, h, s.rng.random() < 0.5, groups, s.choice((1, 1, 2)), s.channels(16, 2 * c))
    if kind == "v1":
        return shufflenet_v1_unit(c, h, s.choice((1, 2, 3, 4, 8)), s.rng.random() < 0.3)
    if kind == "dense":
        return dense_layers(c, h, s.choice((12, 24, 32)), int(s.rng.integers(1, 4)), s.rng.random() < 0.3)
    if kind == "stem":
        return stem(s.choice((160, 192, 224)), s.choice((16, 24, 32, 64)), s.choice((3, 3, 7)),
                    s.rng.random() < 0.7)
    if kind == "head":
        h = s.choice((5, 6, 7))
        return head(s.channels(64, 960), h, s.choice((512, 1024, 1280, 2048)), s.choice((10, 1000)),
                    s.rng.random() < 0.5)
    if kind == "fire":
        sq = s.channels(16, 64)
        return fire(c, h, sq, 4 * sq)
    return inception(c, h, tuple(s.channels(16, max(16, c // 2)) for _ in range(4)))
