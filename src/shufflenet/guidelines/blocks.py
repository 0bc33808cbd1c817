"""The benchmark networks of the guideline experiments (paper Sec. 2, Tables 1-4).

Choices the paper leaves open, stated once here:

- **Plain convolutions.** Tables 1-3 describe stacks of bare 1x1 convolutions ("two 1x1 convs",
  "10 pointwise group convolution layers", "1x1 convs ... outputs summed"): the nets here contain exactly
  those convolutions, without bias, BN or ReLU. Adding activations would add element-wise ops, which are
  the subject of G4, not of G1-G3. The sum of the parallel blocks (Table 3) is part of those structures.
- **The ResNet bottleneck (Table 4)** is torchvision's ``Bottleneck`` without BN: conv1x1 -> ReLU ->
  conv3x3 -> ReLU -> conv1x1 -> (+ identity) -> ReLU, in-place ReLUs and an in-place add as torchvision
  writes them. BN is left out because at inference it folds into the preceding convolution (the paper
  ran with "all optimisations on", Sec. 2), and keeping it would add an element-wise op that the experiment
  does not vary. Removing the ReLU removes all three ReLUs; removing the shortcut removes the add.

All nets keep input and output widths equal, so the blocks stack; every conv is ``bias=False``.
"""

from __future__ import annotations

import torch
from torch import nn

from shufflenet.errors import UserInputError


def _conv1x1(cin: int, cout: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=1, padding=0, groups=groups, bias=False)


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserInputError(f"{name} must be a positive integer, got {v!r}")


class G1Block(nn.Module):
    """Table 1 block: 1x1 conv c1 -> c2, then 1x1 conv c2 -> c1."""

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        _check_positive(c1=c1, c2=c2)
        self.c1, self.c2 = c1, c2
        self.conv1 = _conv1x1(c1, c2)
        self.conv2 = _conv1x1(c2, c1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class G3Block(nn.Module):
    """Table 3 block (Appendix Fig. 1): ``fragments`` 1x1 convs ``width -> width``, either in series or in
    parallel with their outputs summed. ``fragments=1`` is the 1-fragment block (one conv)."""

    def __init__(self, width: int, fragments: int, parallel: bool) -> None:
        super().__init__()
        _check_positive(width=width, fragments=fragments)
        self.width, self.fragments, self.parallel = width, fragments, bool(parallel) and fragments > 1
        self.convs = nn.ModuleList(_conv1x1(width, width) for _ in range(fragments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.parallel:
            y = self.convs[0](x)
            for conv in self.convs[1:]:
                y = y + conv(x)
            return y
        for conv in self.convs:
            x = conv(x)
        return x


class Bottleneck(nn.Module):
    """Table 4 unit: ResNet bottleneck ``width -> mid -> mid -> width`` (1x1, 3x3, 1x1) without BN.

    ``relu`` switches all three ReLUs, ``shortcut`` the identity add (see the module docstring).
    """

    def __init__(self, width: int, mid: int, relu: bool = True, shortcut: bool = True) -> None:
        super().__init__()
        _check_positive(width=width, mid=mid)
        self.width, self.mid, self.use_relu, self.use_shortcut = width, mid, bool(relu), bool(shortcut)
        self.conv1 = _conv1x1(width, mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv3 = _conv1x1(mid, width)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        if self.use_shortcut:
            out += x
        return self.relu(out)


class BenchNet(nn.Sequential):
    """A stack of blocks with its input width recorded (``in_channels``) for building the input tensor."""

    def __init__(self, blocks: list[nn.Module], in_channels: int, name: str = "") -> None:
        super().__init__(*blocks)
        self.in_channels = in_channels
        self.name = name

    def extra_repr(self) -> str:
        return f"name={self.name!r}, in_channels={self.in_channels}" if self.name else ""


def g1_net(c1: int, c2: int, depth: int = 10) -> BenchNet:
    """Table 1: ``depth`` blocks of two 1x1 convs c1 -> c2 -> c1; input has c1 channels."""
    _check_positive(depth=depth)
    return BenchNet([G1Block(c1, c2) for _ in range(depth)], c1, f"g1 c1={c1} c2={c2}")


def g2_net(c: int, groups: int, depth: int = 10) -> BenchNet:
    """Table 2: ``depth`` 1x1 group convs c -> c with ``groups`` groups (c divisible by groups)."""
    _check_positive(c=c, groups=groups, depth=depth)
    if c % groups:
        raise UserInputError(f"G2: {c} channels are not divisible by {groups} groups")
    return BenchNet([_conv1x1(c, c, groups) for _ in range(depth)], c, f"g2 c={c} g={groups}")


def g3_net(width: int, fragments: int, parallel: bool, depth: int = 10) -> BenchNet:
    """Table 3: ``depth`` fragment blocks of ``width`` channels (see :class:`G3Block`)."""
    _check_positive(depth=depth)
    kind = "parallel" if parallel and fragments > 1 else "series"
    return BenchNet([G3Block(width, fragments, parallel) for _ in range(depth)], width,
                    f"g3 {fragments}-fragment-{kind} w={width}")


def g4_net(width: int, mid: int, relu: bool, shortcut: bool, depth: int = 10) -> BenchNet:
    """Table 4: ``depth`` ResNet bottlenecks ``width -> mid -> mid -> width`` (see :class:`Bottleneck`)."""
    _check_positive(depth=depth)
    return BenchNet([Bottleneck(width, mid, relu, shortcut) for _ in range(depth)], width,
                    f"g4 c={width} mid={mid} relu={relu} shortcut={shortcut}")
