"""Cost results: per-op rows, groupings and rendering (table, CSV, JSON). No counting happens here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shufflenet import result
from shufflenet.render import render, si
from shufflenet.result import Column, Figure, Table

GROUPINGS = ("layer", "op", "stage", "row")


def _intensity(flops: int, mac: int) -> float:
    return flops / mac if mac else 0.0


@dataclass(slots=True)
class LayerCost:
    """One priced aten op call, attributed to the innermost module that made it.

    ``name`` is the module path from ``named_modules()`` ("(root)" for the model itself), ``op`` the
    short aten name, ``kind`` a category (conv, dwconv, gconv, linear, norm, act, elementwise, pool,
    data, other), ``module_type`` the class name of that module, ``params`` the parameters the op read.
    """

    name: str
    op: str
    kind: str
    module_type: str
    params: int
    flops: int
    mac: int
    mac_bytes: int
    output_shape: tuple[int, ...]

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per element of memory access (0 when MAC is 0)."""
        return _intensity(self.flops, self.mac)

    @property
    def stage(self) -> str:
        """First component of the module path (the model's top-level child)."""
        return self.name.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "op": self.op, "kind": self.kind, "module_type": self.module_type,
            "params": self.params, "flops": self.flops, "mac": self.mac, "mac_bytes": self.mac_bytes,
            "intensity": self.intensity, "output_shape": list(self.output_shape),
        }


@dataclass(slots=True)
class CostGroup:
    """Rows summed over a grouping key. ``kind``/``op``/``module_type`` are "" when the group mixes them.

    ``params`` sums the parameters read by every call, so a module called twice counts its weights twice.
    """

    name: str
    kind: str = ""
    op: str = ""
    module_type: str = ""
    calls: int = 0
    params: int = 0
    flops: int = 0
    mac: int = 0
    mac_bytes: int = 0

    @property
    def intensity(self) -> float:
        return _intensity(self.flops, self.mac)

    def _add(self, row: LayerCost) -> None:
        self.calls += 1
        self.params += row.params
        self.flops += row.flops
        self.mac += row.mac
        self.mac_bytes += row.mac_bytes
        if self.kind != row.kind:
            self.kind = "" if self.calls > 1 else row.kind
        if self.op != row.op:
            self.op = "" if self.calls > 1 else row.op
        if self.module_type != row.module_type:
            self.module_type = "" if self.calls > 1 else row.module_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "op": self.op, "module_type": self.module_type,
            "calls": self.calls, "params": self.params, "flops": self.flops, "mac": self.mac,
            "mac_bytes": self.mac_bytes, "intensity": self.intensity,
        }


def _group(rows: list[LayerCost], key: Any) -> list[CostGroup]:
    groups: dict[Any, CostGroup] = {}
    for r in rows:
        k = key(r)
        g = groups.get(k)
        if g is None:
            g = groups[k] = CostGroup(name=k if isinstance(k, str) else k[-1])
        g._add(r)
    return list(groups.values())


@dataclass
class CostReport:
    """Totals and per-op rows of one counted forward pass (see :func:`shufflenet.cost.count_cost`).

    ``params`` counts the model's unique parameters; ``flops``, ``mac`` and ``mac_bytes`` are the sums of
    the rows. ``unsupported_ops`` maps op names without a rule to their call counts; when there is any,
    the totals leave those ops out (:attr:`complete` is ``False``) and every rendering says so.
    """

    model_name: str
    mode: str
    input_size: tuple[int, ...]
    params: int
    flops: int
    mac: int
    mac_bytes: int
    layers: list[LayerCost] = field(default_factory=list)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    count_elementwise_flops: bool = False
    dtype: str = "float32"

    @property
    def intensity(self) -> float:
        """Whole-model arithmetic intensity, FLOPs per element of memory access."""
        return _intensity(self.flops, self.mac)

    @property
    def complete(self) -> bool:
        """``True`` when every op had a rule, so the totals count the whole forward pass."""
        return not self.unsupported_ops

    def incomplete_warning(self) -> str:
        """"" when complete, else one line naming the ops the totals leave out."""
        if self.complete:
            return ""
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(self.unsupported_ops.items()))
        return f"WARNING: incomplete totals -- unsupported ops (no rule, not counted): {listed}"

    # -- groupings -------------------------------------------------------------------------------

    def by_layer(self) -> list[CostGroup]:
        """Rows summed per module path, in order of first appearance."""
        return _group(self.layers, lambda r: r.name)

    def by_op(self) -> list[CostGroup]:
        """Rows summed per (kind, op), in order of first appearance."""
        return _group(self.layers, lambda r: (r.kind, r.op))

    def by_stage(self) -> list[CostGroup]:
        """Rows summed per top-level child of the model (first component of the module path)."""
        return _group(self.layers, lambda r: r.stage)

    def grouped(self, by: str = "layer") -> list[CostGroup] | list[LayerCost]:
        """``by`` is "layer", "op", "stage" or "row" (the raw per-op rows)."""
        if by == "row":
            return list(self.layers)
        if by == "layer":
            return self.by_layer()
        if by == "op":
            return self.by_op()
        if by == "stage":
            return self.by_stage()
        from shufflenet.errors import UserInputError

        raise UserInputError(f"unknown grouping {by!r}; expected one of {', '.join(GROUPINGS)}")

    # -- the result contract (rendered by shufflenet.render) --------------------------------------

    def conventions(self) -> list[str]:
        """How to read the numbers; an incomplete count's warning comes first, so no rendering hides it."""
        lines = [self.incomplete_warning()] if not self.complete else []
        lines += [result.FLOPS_ELEMENTWISE if self.count_elementwise_flops else result.FLOPS, result.MAC]
        if self.mode == "deploy":
            lines.append(result.DEPLOY)
        return lines

    def to_dict(self, by: str | None = None) -> dict[str, Any]:
        """JSON-ready dict: totals, settings, conventions, unsupported ops and the per-op rows (and the
        grouping ``by`` under "groups" when given)."""
        d: dict[str, Any] = {
            "model": self.model_name, "mode": self.mode, "input_size": list(self.input_size),
            "dtype": self.dtype, "count_elementwise_flops": self.count_elementwise_flops,
            "conventions": self.conventions(), "params": self.params, "flops": self.flops,
            "mac": self.mac, "mac_bytes": self.mac_bytes, "intensity": self.intensity,
            "complete": self.complete, "unsupported_ops": dict(self.unsupported_ops),
            "layers": [r.to_dict() for r in self.layers],
        }
        if by is not None:
            d["groups"] = [g.to_dict() for g in self.grouped(by)]
        return d

    def to_json(self, by: str | None = None, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(by), indent=indent)

    def tables(self, by: str = "layer", max_rows: int | None = None) -> list[Table]:
        """The groups ``by`` layer/op/stage/row (``max_rows`` keeps the heaviest by MAC), then the totals."""
        items = self.grouped(by)
        if max_rows is not None and len(items) > max_rows:
            keep = {id(x) for x in sorted(items, key=lambda x: -x.mac)[:max_rows]}
            items = [x for x in items if id(x) in keep]
        cols = [Column(c, "module" if c == "module_type" else "") for c in _TEXT_COLUMNS[by]] + _COUNT_COLUMNS
        title = (f"{self.model_name}  input {'x'.join(map(str, self.input_size))} {self.dtype}  "
                 f"mode={self.mode}  by={by}")
        warning = [self.incomplete_warning()] if not self.complete else []
        groups = Table(title, cols, [it.to_dict() for it in items], key=by)
        total = {"scope": "whole model" if self.complete else "whole model (INCOMPLETE)", "params": self.params,
                 "flops": self.flops, "mac": self.mac, "mac_bytes": self.mac_bytes, "intensity": self.intensity}
        totals = Table("totals", [Column("scope"), *_COUNT_COLUMNS], [total], notes=warning, key="totals")
        return [groups, totals]

    def figures(self) -> list[Figure]:
        return []

    def view(self, by: str = "layer", max_rows: int | None = None) -> CostView:
        """This report as a result grouped ``by`` (what ``shufflenet cost --by`` renders)."""
        self.grouped(by)  # validates ``by``
        return CostView(self, by, max_rows)

    def to_csv(self, by: str = "layer") -> str:
        """Integer counts (no unit scaling), one line per group; columns mirror ``to_dict`` keys."""
        return render(self.view(by), "csv")

    def to_table(self, by: str = "layer", max_rows: int | None = None) -> str:
        """Aligned text table with human units (K/M/G, decimal), the conventions and a total line."""
        return render(self.view(by, max_rows), "table")

    def summary(self) -> str:
        """One line: params, FLOPs, MAC."""
        return (f"{self.model_name}: params {si(self.params)}, FLOPs {si(self.flops)} (multiply-adds), "
                f"MAC {si(self.mac)} elements ({si(self.mac_bytes, 'B')}), mode={self.mode}"
                + ("" if self.complete else f" -- {self.incomplete_warning()}"))

    def __str__(self) -> str:
        return self.to_table()


_TEXT_COLUMNS = {"row": ["name", "op", "kind", "module_type", "output_shape"], "op": ["kind", "op", "calls"],
                 "stage": ["name", "calls"], "layer": ["name", "module_type", "calls"]}
_COUNT_COLUMNS = [Column("params", fmt="si"), Column("flops", "FLOPs", fmt="si"), Column("mac", "MAC", fmt="si"),
                  Column("mac_bytes", "MAC", "bytes", fmt="si"), Column("intensity", "FLOPs/MAC", fmt=".2f")]


@dataclass
class CostView:
    """A :class:`CostReport` grouped one way, as a result of the contract (``CostReport.view``)."""

    report: CostReport
    by: str = "layer"
    max_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report's dict with its rows grouped ``by`` under ``"groups"``."""
        return {**self.report.to_dict(self.by), "by": self.by}

    def tables(self) -> list[Table]:
        return self.report.tables(self.by, self.max_rows)

    def figures(self) -> list[Figure]:
        return []

    def conventions(self) -> list[str]:
        return self.report.conventions()
