"""``optimize(model)``: the same network, rebuilt for inference speed on this platform.

What is done, in order (each step is recorded in the returned model's ``deploy_steps``):

1. **BN folding** — every BatchNorm that follows a convolution becomes that convolution's scale and bias.
2. **ReLU fusion** — the ReLU after a folded convolution runs in place on its output (no extra tensor).
   In eager PyTorch this is the fusion the backend allows; with ``compile=True`` Inductor fuses the
   element-wise tails into the convolutions' epilogues, and ONNX Runtime / OpenVINO / ncnn fuse
   ``Conv + Relu`` themselves.
3. **Channel shuffle folded away** (ShuffleNet V2): split, concat and shuffle are replaced by weight
   permutations and one concat per unit of half the channels
   (:mod:`shufflenet.deploy.shufflenet_v2`). Other networks keep their graph.
4. **channels_last** (NHWC) weights and activations, the layout oneDNN's CPU convolutions run fastest in.
5. optionally **torch.compile** (Inductor, with weight freezing).

The optimised model computes the original's function to float32 rounding (checked by
:func:`shufflenet.deploy.parity.compare`); it is for inference only (eval mode, no gradients).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from shufflenet.deploy.fold import fold_sequential
from shufflenet.errors import UserInputError, WrongTypeError, first_line


class ChannelsLastInput(nn.Module):
    """Runs ``module`` on its input converted to channels_last (a no-op for an input already in it)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.contiguous(memory_format=torch.channels_last))


def optimize(model: nn.Module, *, channels_last: bool = True, fold_shuffle: bool = True,
             compile: bool = False, compile_mode: str | None = None) -> nn.Module:
    """The inference-optimised copy of ``model`` (module docstring); ``model`` itself is not changed.

    Args:
        model: any PyTorch model; ShuffleNet V2 (both layouts, all variants) gets the shuffle folding.
        channels_last: store weights and activations as NHWC (default: yes).
        fold_shuffle: fold ShuffleNet V2's split/concat/shuffle into weights (default: yes).
        compile: wrap the result in ``torch.compile`` (Inductor, frozen weights). The first call compiles
            (tens of seconds on a small CPU) and the compiled model serves one input shape per compilation.
        compile_mode: ``torch.compile``'s ``mode`` (``"max-autotune"`` searches kernels, slower to build).

    Returns:
        An ``nn.Module`` in eval mode whose ``deploy_steps`` lists what was applied.
    """
    if not isinstance(model, nn.Module):
        raise WrongTypeError(f"optimize() takes an nn.Module, got {type(model).__name__}")
    source = _as_package_v2(model) or copy.deepcopy(model).eval()
    steps: list[str] = []
    result: nn.Module
    if fold_shuffle and _is_foldable_v2(source):
        from shufflenet.deploy.shufflenet_v2 import fold_shufflenet_v2

        result = fold_shufflenet_v2(source, channels_last=channels_last)
        steps += ["BN folded into convolutions", "ReLU fused in place",
                  "split/concat/shuffle folded into weight permutations (one half-width concat per unit)"]
        if channels_last:
            steps.append("channels_last")
    else:
        result, folded = fold_batchnorms(source)
        if folded:
            steps.append(f"BN folded into convolutions ({folded})")
        if channels_last:
            result = ChannelsLastInput(result.to(memory_format=torch.channels_last))
            steps.append("channels_last")
    result.eval()
    for p in result.parameters():
        p.requires_grad_(False)
    if compile:
        result = _compile(result, compile_mode)
        steps.append(f"torch.compile (inductor{', ' + compile_mode if compile_mode else ''}, frozen weights)")
    result.deploy_steps = steps  # type: ignore[assignment]
    return result


def _as_package_v2(model: nn.Module) -> nn.Module | None:
    """torchvision's ShuffleNetV2 as this package's ``layout="torchvision"`` model with the same weights
    (the state-dict keys are the same), so that it gets the shuffle folding too; else ``None``."""
    try:
        from torchvision.models import ShuffleNetV2 as TorchvisionShuffleNetV2
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return None
    if type(model) is not TorchvisionShuffleNetV2:
        return None
    from shufflenet.models.shufflenet_v2 import ShuffleNetV2

    widths = list(model._stage_out_channels)
    repeats = [len(getattr(model, f"stage{i}")) for i in (2, 3, 4)]
    ours = ShuffleNetV2(repeats, widths[1:4], widths[4], stem_channels=(widths[0],), layout="torchvision",
                        num_classes=model.fc.out_features, in_chans=model.conv1[0].in_channels)
    ours.load_state_dict(model.state_dict())
    return ours.eval()


def _is_foldable_v2(model: nn.Module) -> bool:
    from shufflenet.models.shufflenet_v2 import ShuffleNetV2, ShuffleV2Unit

    if not isinstance(model, ShuffleNetV2):
        return False
    return all(type(u) is ShuffleV2Unit for name in model.stage_names for u in getattr(model, name))


def fold_batchnorms(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold every BatchNorm that directly follows a convolution (and the ReLU after it) in ``model``.

    Tried with ``torch.fx`` first (any graph: torchvision's ResNets keep ``conv1``/``bn1`` as attributes);
    a model FX cannot trace gets its ``nn.Sequential`` runs folded instead. Returns the model and how many
    BatchNorms were folded.
    """
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    try:
        from torch.fx.experimental.optimization import fuse

        traced = fuse(model, inplace=False)
        left = sum(isinstance(m, nn.BatchNorm2d) for m in traced.modules())
        return traced, n_bn - left
    except Exception:  # noqa: BLE001 - FX cannot trace every model (data-dependent control flow): fall back
        pass
    count = _fold_sequentials(model)
    return model, count


def _fold_sequentials(module: nn.Module) -> int:
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Sequential) and any(isinstance(c, nn.BatchNorm2d) for c in child):
            before = sum(isinstance(c, nn.BatchNorm2d) for c in child)
            try:
                layers = fold_sequential(list(child))
            except UserInputError:
                layers = list(child)
            after = sum(isinstance(c, nn.BatchNorm2d) for c in layers)
            if after < before:
                count += before - after
                setattr(module, name, nn.Sequential(*layers))
                continue
        count += _fold_sequentials(child)
    return count


def _compile(model: nn.Module, mode: str | None) -> nn.Module:
    try:
        compiled: Any = torch.compile(model, mode=mode, options=None if mode else {"freezing": True})
    except Exception as exc:  # noqa: BLE001 - a missing compiler toolchain, an unsupported platform
        raise UserInputError(f"torch.compile is not available here: {first_line(exc)}") from exc
    return compiled

