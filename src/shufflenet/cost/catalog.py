"""The model registry counted: every model's parameters, FLOPs and MAC beside the papers' values, and
ShuffleNet V2's Table 5 re-derived from the code (stage widths, FLOPs, weights).

Each model is built and counted once per process (:func:`model_cost` is cached), so the Table 5 block
and the registry rows share their reports.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shufflenet import result
from shufflenet.cost.engine import count_cost
from shufflenet.cost.report import CostReport
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.shufflenet_v2 import TABLE5_CHANNELS
from shufflenet.result import Figure, Table

WEIGHTS = "weights = conv + FC weights; counted at each model's paper input size (224 for Table 5)"
TABLE5_NOTE = "; ".join((result.FLOPS, WEIGHTS, result.MAC))
V2_WIDTHS = tuple(w.replace(".", "_") for w in TABLE5_CHANNELS)

Progress = Callable[[Iterable[str], str], Iterable[str]]


@functools.cache
def model_cost(name: str) -> tuple[int, CostReport]:
    """(conv + FC weights, cost report at the model's paper input size), computed once per name."""
    model = create_model(name)
    size = get_entry(name).input_size
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    return weights, count_cost(model, (1, 3, size, size))


def _delta(ours: float | None, paper: float | None) -> float | None:
    if ours is None or not paper:
        return None
    return round(100.0 * (ours / paper - 1.0), 1)


def table5_rows() -> list[dict[str, Any]]:
    """Table 5 re-derived: stage widths, FLOPs and weights of this package's ShuffleNet V2 networks."""
    rows = []
    for width, (stages, final) in TABLE5_CHANNELS.items():
        name = f"shufflenet_v2_x{width.replace('.', '_')}"
        weights, cost = model_cost(name)
        paper = get_entry(name).paper
        rows.append({
            "width": f"{width}x", "stage2-4": "/".join(map(str, stages)), "conv5": final,
            "MFLOPs": round(cost.flops / 1e6, 1), "paper MFLOPs": paper.mflops,
            "Mweights": round(weights / 1e6, 2), "paper Mweights": paper.mparams,
            "MMAC": round(cost.mac / 1e6, 2),
        })
    return rows


def model_rows(names: Iterable[str], with_cost: bool = True) -> list[dict[str, Any]]:
    """One row per model: params, FLOPs, MAC (when ``with_cost``) and the papers' values with their source."""
    rows = []
    for name in names:
        entry = get_entry(name)
        row: dict[str, Any] = {"name": name}
        if with_cost:
            cost = model_cost(name)[1]
            row.update({"Mparams": round(cost.params / 1e6, 3), "MFLOPs": round(cost.flops / 1e6, 1),
                        "MMAC": round(cost.mac / 1e6, 2)})
        row.update({"paper MFLOPs": entry.paper.mflops, "paper Mparams": entry.paper.mparams})
        if with_cost:
            row["dFLOPs %"] = _delta(row["MFLOPs"], entry.paper.mflops)
        row["source"] = entry.paper.source or "-"
        rows.append(row)
    return rows


@dataclass
class ModelCatalog:
    """The registry (or the models matching a pattern) counted, as a result of the contract. Its CSV is
    the ``models`` table (``render(catalog, "csv", table="models")``)."""

    pattern: str
    models: list[dict[str, Any]]
    table5: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"convention": TABLE5_NOTE, "table5": self.table5, "models": self.models}

    def tables(self) -> list[Table]:
        models = Table.from_rows(f"Models ({len(self.models)}); paper values with their source", self.models,
                                 key="models")
        if not self.table5:
            return [models]
        t5 = Table.from_rows("ShuffleNet V2, paper Table 5 re-derived", self.table5, key="table5")
        return [t5, models]

    def figures(self) -> list[Figure]:
        return []

    def conventions(self) -> list[str]:
        return [result.FLOPS, result.MAC, WEIGHTS]


def catalog(pattern: str = "*", *, with_cost: bool = True, progress: Progress | None = None) -> ModelCatalog:
    """Count every model matching ``pattern`` (shell-style); with ShuffleNet V2 in it, Table 5 too."""
    names = list_models(pattern)
    if not names:
        raise UserInputError(f"no model matches {pattern!r}; try `shufflenet models` for the full list")
    with_table5 = with_cost and any(fnmatch.fnmatch(f"shufflenet_v2_x{w}", pattern) for w in V2_WIDTHS)
    t5 = table5_rows() if with_table5 else []
    it = progress(names, "counting") if progress is not None else names
    return ModelCatalog(pattern, model_rows(it, with_cost), t5)
