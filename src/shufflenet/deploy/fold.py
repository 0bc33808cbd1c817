"""Folding inference-time algebra into convolution weights: BatchNorm, and channel permutations.

At inference a BatchNorm is an affine map per channel, ``y = (x - mean) * gamma / sqrt(var + eps) + beta``,
so ``BN(conv(x))`` is one convolution with scaled weights and a bias. A channel permutation that only
reorders a tensor's channels can likewise be moved into the weights of the convolution that produces the
tensor (reorder its output rows) and of the one that reads it (reorder its input columns): the paper's
channel shuffle (Sec. 3, Fig. 3) then costs no data movement at all.

The arithmetic is done in float64 and cast back, so folding adds no rounding beyond the final cast.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from shufflenet.errors import UserInputError


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of the single convolution equal to ``bn(conv(x))`` in eval mode."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is None:
        return w.to(conv.weight.dtype), b.to(conv.weight.dtype)
    if bn.running_mean is None or bn.running_var is None:
        raise UserInputError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    scale = torch.ones_like(bn.running_var, dtype=torch.float64) if bn.weight is None else bn.weight.detach().double()
    shift = torch.zeros_like(scale) if bn.bias is None else bn.bias.detach().double()
    inv_std = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
    factor = scale * inv_std
    w = w * factor.view(-1, *([1] * (w.dim() - 1)))
    b = (b - bn.running_mean.detach().double()) * factor + shift
    return w.to(conv.weight.dtype), b.to(conv.weight.dtype)


class FoldedConv(nn.Module):
    """A convolution with its BatchNorm folded in (a bias) and its ReLU applied in place right after.

    Only the ``F.conv2d`` + in-place ReLU pair runs in eager mode: no copy of the output, no BN kernel, no
    separate ReLU allocation. Exporters see a plain ``Conv`` + ``Relu``, which every runtime fuses.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, *, stride: int | Sequence[int] = 1,
                 padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
                 relu: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.relu = relu

    @classmethod
    def from_conv_bn(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, relu: bool = False) -> FoldedConv:
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise UserInputError(f"cannot fold {conv}: only explicit zero padding is supported")
        w, b = fold_bn(conv, bn)
        return cls(w, b, stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                   relu=relu)

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return F.relu(y, inplace=True) if self.relu else y

    def permute_outputs(self, order: torch.Tensor) -> None:
        """Make output channel ``p`` what output channel ``order[p]`` was (for a depthwise conv this also
        reorders its inputs, which it reads one per output)."""
        _check_order(order, self.out_channels, "output")
        if self.groups > 1 and not self.depthwise:
            raise UserInputError("a grouped (non-depthwise) convolution's outputs cannot be permuted freely")
        with torch.no_grad():
            self.weight = nn.Parameter(self.weight[order].clone(), requires_grad=False)
            self.bias = nn.Parameter(self.bias[order].clone(), requires_grad=False)

    def permute_inputs(self, order: torch.Tensor) -> None:
        """Read input channel ``order[p]`` of the old layout at position ``p`` (a dense convolution only)."""
        if self.groups != 1:
            raise UserInputError("only a dense convolution's inputs can be permuted on their own")
        _check_order(order, self.in_channels, "input")
        with torch.no_grad():
            self.weight = nn.Parameter(self.weight[:, order].clone(), requires_grad=False)

    def extra_repr(self) -> str:
        k = tuple(self.weight.shape[2:])
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, relu={self.relu}")


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(i) for i in v)
    return (t[0], t[1]) if len(t) == 2 else (t[0], t[0])


def _check_order(order: torch.Tensor, n: int, what: str) -> None:
    if order.dim() != 1 or order.numel() != n or not torch.equal(torch.sort(order).values, torch.arange(n)):
        raise ValueError(f"not a permutation of the {n} {what} channels")


def fold_sequential(layers: Sequence[nn.Module]) -> list[nn.Module]:
    """Fold every ``Conv2d [BatchNorm2d] [ReLU]`` run of ``layers`` into one :class:`FoldedConv`; other
    modules are kept as they are."""
    out: list[nn.Module] = []
    items = list(layers)
    i = 0
    while i < len(items):
        m = items[i]
        if isinstance(m, nn.Conv2d):
            bn = items[i + 1] if i + 1 < len(items) and isinstance(items[i + 1], nn.BatchNorm2d) else None
            j = i + 1 + (bn is not None)
            relu = j < len(items) and isinstance(items[j], nn.ReLU)
            out.append(FoldedConv.from_conv_bn(m, bn, relu=relu))
            i = j + relu
        else:
            out.append(m)
            i += 1
    return out
