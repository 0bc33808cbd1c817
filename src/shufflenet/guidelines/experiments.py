"""The guideline experiments as rows: each paper table's rows as exact layer configurations.

Common to all four of the paper's (Sec. 2, Tables 1-4): 10 stacked blocks (``DEPTH``) on a 56x56 input
(``INPUT_HW``); three columns per table, indexed by the channel multipliers x1/x2/x4 (``MULTIPLIERS``);
two channel sets, the paper's **GPU** set and its **ARM** set (Tables 1-3 use smaller channels on ARM;
Table 4 uses c = 32/64/128 on both). Which set to use is the caller's choice; the CLI defaults to the ARM
set on CPU and the GPU set on CUDA, matching the platform each set was measured on.

How a row becomes a configuration, what the net is and its closed-form cost are each guideline's own
(:class:`~shufflenet.guidelines.guideline.Guideline`, one module per guideline: ``g1`` ... ``g4``, whose
docstrings state the choices the paper leaves open); this module turns any registered guideline's table
into :class:`RowSpec` objects.

FLOPs (multiply-adds) are equal across each table's rows within +-4% of the table mean
(``FLOPS_TOLERANCE``), as the paper's are; the tests check it with the cost engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.guidelines.g3 import g3_width
from shufflenet.guidelines.g4 import G4_BOTTLENECK_RATIO
from shufflenet.guidelines.guideline import DEPTH, INPUT_HW, Guideline
from shufflenet.guidelines.paper_tables import MULTIPLIERS, TABLES
from shufflenet.guidelines.registry import GUIDELINES, choices_text, get_guideline

FLOPS_TOLERANCE = 0.04
CHANNEL_SETS = ("gpu", "arm")

__all__ = [
    "CHANNEL_SETS", "DEPTH", "FLOPS_TOLERANCE", "G4_BOTTLENECK_RATIO", "GUIDELINES", "INPUT_HW", "MULTIPLIERS",
    "TABLES", "RowSpec", "check_channels", "check_guideline", "check_multipliers", "column_rows",
    "describe_choices", "experiment_rows", "g3_width",
]


@dataclass(frozen=True)
class RowSpec:
    """One row of one column of a guideline table: an exact network configuration.

    ``column`` is the paper's heading of this column for the channel set (``"x1"``, ``"c=64"``);
    ``paper_gpu`` / ``paper_arm`` are the paper's speeds for this row in this column (GPU batches/s,
    ARM images/s). ``config`` holds the layer configuration; ``notes`` any deviation from the paper.
    """

    guideline: str
    index: int
    label: str
    multiplier: int
    channels: str
    column: str
    config: dict[str, Any]
    in_channels: int
    paper_gpu: float
    paper_arm: float
    depth: int = DEPTH
    hw: int = INPUT_HW
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.guideline} x{self.multiplier} {self.label}"

    @property
    def definition(self) -> Guideline:
        """The registered :class:`Guideline` this row belongs to."""
        return get_guideline(self.guideline)

    def input_size(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.in_channels, self.hw, self.hw)

    def describe(self) -> str:
        """The configuration in a few words, e.g. ``c1=32 c2=32`` or ``w=45 x2 series``."""
        return self.definition.describe(self.config)

    def build(self) -> nn.Module:
        """A freshly initialised benchmark net for this row (eval mode)."""
        return self.definition.build(self.config, self.depth).eval()

    def expected_flops(self) -> int:
        """Multiply-adds per image from the closed forms (the cost engine must agree; tests check it)."""
        return self.definition.expected_flops(self.config, self.hw, self.depth)

    def expected_mac(self) -> int | None:
        """The paper's closed-form MAC per image (G1, G2), or ``None`` where the paper gives none."""
        return self.definition.expected_mac(self.config, self.hw, self.depth)

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "row": self.label, "index": self.index,
                "multiplier": self.multiplier, "channels": self.channels, "column": self.column,
                "config": dict(self.config), "config_text": self.describe(),
                "input_size": list(self.input_size(1)), "depth": self.depth,
                "paper_gpu": self.paper_gpu, "paper_arm": self.paper_arm, "notes": list(self.notes)}


def check_guideline(key: str) -> str:
    """A registered guideline's key (normalised); an unknown one is bad input."""
    k = str(key).strip().lower()
    if k not in GUIDELINES:
        raise UserInputError(f"unknown guideline {key!r}: choose {choices_text()}")
    return k


def check_channels(channels: str) -> str:
    ch = str(channels).strip().lower()
    if ch not in CHANNEL_SETS:
        raise UserInputError(f"unknown channel set {channels!r}: choose gpu or arm")
    return ch


def check_multipliers(multipliers: Sequence[int]) -> tuple[int, ...]:
    out = tuple(multipliers)
    if not out or any(m not in MULTIPLIERS for m in out):
        raise UserInputError(f"multipliers must be a non-empty subset of {MULTIPLIERS}, got {list(out)}")
    return tuple(sorted(set(out)))


def column_rows(key: str, channels: str, multiplier: int) -> list[RowSpec]:
    """The rows of one column of a table (one multiplier, one channel set), in the paper's order."""
    key, channels = check_guideline(key), check_channels(channels)
    check_multipliers([multiplier])
    g = get_guideline(key)
    table = g.table
    column = table.column(channels, multiplier)
    out = []
    for i, prow in enumerate(table.rows):
        config, cin, notes = g.configure(table, prow.label, channels, multiplier)
        out.append(RowSpec(guideline=key, index=i, label=prow.label, multiplier=multiplier, channels=channels,
                           column=column, config=config, in_channels=cin,
                           paper_gpu=prow.speed("gpu", multiplier), paper_arm=prow.speed("arm", multiplier),
                           depth=g.depth, hw=g.hw, notes=tuple(notes)))
    return out


def experiment_rows(key: str, channels: str, multipliers: Sequence[int] = MULTIPLIERS) -> list[RowSpec]:
    """Every row of a table for the given multipliers, column by column."""
    return [r for m in check_multipliers(multipliers) for r in column_rows(key, channels, m)]


def describe_choices() -> list[str]:
    """The protocol choices the paper leaves open, one line each (for reports and JSON)."""
    return [
        f"{DEPTH} stacked blocks on a {INPUT_HW}x{INPUT_HW} input (paper Sec. 2, Tables 1-3)",
        "the nets hold only what each table describes (convolutions; in G4 also the ReLUs and shortcut "
        "it varies): no bias, no BN (folded at inference)",
        *(line for g in GUIDELINES.values() for line in g.choices),
    ]
