"""Building blocks shared by every network family: conv-BN-act, channel shuffle, channel split, SE.

Channel shuffle is the operation of ShuffleNet V1 (Sec. 3.1 of the V1 paper) that V2 keeps (Fig. 3c/d).
Two numerically identical formulations are provided:

* ``"5d"``: the usual ``view(N, g, C/g, H, W) -> transpose(1, 2) -> view(N, C, H, W)`` (torchvision).
* ``"4d"``: the same permutation with no tensor above rank 4 (``view(N, g, C/g, H*W)``), because
  TFLite's TRANSPOSE supports at most 4-D and CoreML rejects rank > 5 (their converters report it as an unsupported op).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from shufflenet.errors import UserInputError

ShuffleImpl = Literal["5d", "4d"]
SHUFFLE_IMPLS = ("5d", "4d")


def check_shuffle_impl(impl: object) -> ShuffleImpl:
    """``impl`` if it names a channel shuffle formulation, else :class:`UserInputError` (at build time)."""
    if impl not in SHUFFLE_IMPLS:
        raise UserInputError(f"unknown shuffle_impl {impl!r}; choose from {', '.join(SHUFFLE_IMPLS)}")
    return impl  # type: ignore[return-value]


def _check_groups(channels: int, groups: int, what: str) -> None:
    if groups < 1 or channels % groups != 0:
        raise UserInputError(f"{what}: {channels} channels are not divisible by groups={groups}")


def channel_shuffle(x: torch.Tensor, groups: int, impl: ShuffleImpl = "5d") -> torch.Tensor:
    """Channel shuffle: output channel ``k*g + i`` is input channel ``i*(C/g) + k`` (V1 paper Fig. 1c).

    Args:
        x: a 4-D ``(N, C, H, W)`` tensor.
        groups: number of groups ``g``; ``C`` must be divisible by it.
        impl: ``"5d"`` (torchvision's formulation) or ``"4d"`` (no tensor above rank 4, for exporters).
    """
    n, c, h, w = x.shape
    _check_groups(c, groups, "channel_shuffle")
    if impl == "5d":
        x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    elif impl == "4d":
        x = x.reshape(n, groups, c // groups, h * w).transpose(1, 2).contiguous()
    else:
        raise ValueError(f"unknown channel shuffle impl {impl!r}; use '5d' or '4d'")
    return x.view(n, c, h, w)


def shuffle_split(x: torch.Tensor, impl: ShuffleImpl = "5d") -> tuple[torch.Tensor, torch.Tensor]:
    """The official ShuffleNet V2 code's fused shuffle + split (megvii ``ShuffleV2Block.channel_shuffle``).

    Returns ``(even channels, odd channels)``. The ``"5d"`` form reproduces the official
    ``reshape(N*C/2, 2, HW) -> permute(1, 0, 2) -> reshape(2, N, C/2, H, W)``; ``"4d"`` takes strided
    channel slices and never builds a tensor above rank 4. Both give the same two tensors, and both are
    views: the shuffle costs no copy here (the next concat and conv read the strided halves directly).
    """
    n, c, h, w = x.shape
    _check_groups(c, 2, "shuffle_split")
    if impl == "5d":
        y = x.reshape(n * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, n, c // 2, h, w)
        return y[0], y[1]
    if impl == "4d":
        return x[:, 0::2], x[:, 1::2]
    raise ValueError(f"unknown channel shuffle impl {impl!r}; use '5d' or '4d'")


class ChannelShuffle(nn.Module):
    """Module form of :func:`channel_shuffle` (so cost reports attribute the copy to a named layer)."""

    def __init__(self, groups: int, impl: ShuffleImpl = "5d") -> None:
        super().__init__()
        self.groups = groups
        self.impl = check_shuffle_impl(impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups, self.impl)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, impl={self.impl!r}"


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    relu: bool = True,
) -> list[nn.Module]:
    """``Conv(bias=False) -> BN [-> ReLU]`` as a list, so callers can splice it into a Sequential
    whose indices must match a reference layout (torchvision / official state-dict keys)."""
    _check_groups(in_channels, groups, "conv in_channels")
    _check_groups(out_channels, groups, "conv out_channels")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class ConvBNAct(nn.Sequential):
    """``Conv -> BN -> ReLU`` (or without ReLU) as one Sequential with keys ``0``, ``1``, ``2``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        relu: bool = True,
    ) -> None:
        super().__init__(*conv_bn(in_channels, out_channels, kernel_size, stride, groups, relu))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al.) as used by SE-ShuffleNet V2 (paper Appendix Fig. 2b/c).

    The hidden width is ``channels // reduction``; Appendix Table 2's caption gives 1/2 of the block's
    channels for SE-ShuffleNet v2-164, so ``reduction=2`` is the default.
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


def check_input(x: torch.Tensor, in_chans: int, min_size: int, model_name: str) -> None:
    """Fail early, with a message naming the problem, on an input the network cannot take."""
    if x.dim() != 4:
        raise UserInputError(f"{model_name} expects a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    if x.shape[1] != in_chans:
        raise UserInputError(
            f"{model_name} expects {in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})"
        )
    if min(x.shape[2], x.shape[3]) < min_size:
        raise UserInputError(
            f"{model_name} needs inputs of at least {min_size}x{min_size} pixels for its strides, "
            f"got {x.shape[2]}x{x.shape[3]}"
        )
