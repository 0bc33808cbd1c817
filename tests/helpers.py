"""Test helpers: an independent multiply-add counter used to cross-check models against the papers."""

from __future__ import annotations

import csv
import io

import torch
from torch import nn


def conv_fc_madds(model: nn.Module, size: int = 224, in_chans: int = 3) -> int:
    """Multiply-adds of every Conv2d and Linear in one forward pass (the papers' FLOPs), via hooks.

    Independent of the cost engine on purpose. A model built on the meta device is counted from shapes alone.
    """
    total = 0

    def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += out.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_chans, size, size, device=next(model.parameters()).device))
    for h in handles:
        h.remove()
    return total


def weight_count(model: nn.Module) -> int:
    """Conv and FC weights (tensors of rank > 1), as the papers' "# of Weights"."""
    return sum(p.numel() for p in model.parameters() if p.dim() > 1)


def rows_to_csv(rows: list[dict]) -> str:
    """CSV of dict rows exactly as the CLI wrote it before the one renderer (for "same output" checks)."""
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class _FeaturesAndHead(nn.Module):
    """A model's ``forward_head(forward_features(x))`` without the base's input check, whose Python control
    flow on shapes torch.fx cannot trace."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x))


def assert_traceable(model: nn.Module, x: torch.Tensor, jit: bool = True) -> torch.fx.GraphModule:
    """torch.fx traces ``model``'s features + head and (``jit``) torch.jit.trace the whole model; both give the
    model's output on ``x``. Returns the fx graph for further checks."""
    import warnings

    graph = torch.fx.symbolic_trace(_FeaturesAndHead(model))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace's deprecation and the base's input-check TracerWarnings
        torch.testing.assert_close(graph(x), model(x))
        if jit:
            torch.testing.assert_close(torch.jit.trace(model, x)(x), model(x))
    return graph
