"""One guideline experiment as one object: :class:`Guideline`.

Everything the package knows about one of the paper's guidelines (Sec. 2, G1-G4) lives in one
``Guideline``: the paper's table as data, how each row of the table becomes an exact layer configuration,
the benchmark net built from it, its closed-form cost, a short description of a configuration, the judge
of the paper's claim and the phrase the verdict line is written with. Each guideline is defined in its
own module (``g1`` ... ``g4``) and listed in :mod:`shufflenet.guidelines.registry`; the runner, the
verdicts and the plots only iterate over the registry. A new experiment is one module defining a
``Guideline``, plus one line registering it (or :func:`shufflenet.guidelines.registry.register` at run
time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import nn

from shufflenet.guidelines.judging import Judge
from shufflenet.guidelines.paper_tables import PaperTable

DEPTH = 10  # stacked blocks (Sec. 2: Tables 1-3 stack 10 blocks, Table 4 ten bottleneck units)
INPUT_HW = 56  # input side (Sec. 2: 56x56 in Tables 1-3; assumed for Table 4, whose caption gives none)

Config = Mapping[str, Any]


class RowConfig(NamedTuple):
    """One row of one column as built: the layer configuration, the net's input width, and any
    deviation from the paper (one sentence each)."""

    config: dict[str, Any]
    in_channels: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Guideline:
    """A guideline experiment: the paper's table plus everything needed to rerun and judge it.

    - ``key``: the registry key and CLI name (``"g1"``); ``name`` is it in capitals.
    - ``table``: the paper's table (:class:`~shufflenet.guidelines.paper_tables.PaperTable`).
    - ``configure(table, row_label, channels, multiplier) -> RowConfig``: a row's exact configuration
      for a channel set (``"gpu"`` / ``"arm"``) and column (multiplier 1, 2, 4).
    - ``build(config, depth) -> nn.Module``: the benchmark net of ``depth`` identical blocks, each with
      equal input and output shapes (the runner counts one block's cost and multiplies by ``depth``).
    - ``flops(config, hw) -> int``: closed-form multiply-adds of **one block** per image on an
      ``hw x hw`` input (the cost engine must agree; the tests check it).
    - ``mac(config, hw) -> int`` or ``None``: the paper's closed-form MAC of one block, where the paper
      gives one (Sec. 2: G1 and G2, ``MAC = hw(c1+c2) + c1*c2/g`` per 1x1 conv).
    - ``describe(config) -> str``: the configuration in a few words (``"c1=32 c2=32"``).
    - ``judge``: the claim's judge on one column (:data:`~shufflenet.guidelines.judging.Judge`).
    - ``phrase``: the verdict's effect sentence, ``{v}`` standing for the effect values.
    - ``choices``: the protocol choices the paper leaves open for this experiment, one line each.
    - ``depth``, ``hw``: blocks stacked and input side.
    """

    key: str
    table: PaperTable
    configure: Callable[[PaperTable, str, str, int], RowConfig]
    build: Callable[[Config, int], nn.Module]
    flops: Callable[[Config, int], int]
    describe: Callable[[Config], str]
    judge: Judge
    phrase: str
    mac: Callable[[Config, int], int] | None = None
    choices: tuple[str, ...] = ()
    depth: int = DEPTH
    hw: int = INPUT_HW

    def __post_init__(self) -> None:
        if not self.key or self.key != self.key.strip().lower() or self.key == "all":
            raise ValueError(f"a guideline key is a lower-case name other than 'all', got {self.key!r}")
        if "{v}" not in self.phrase:
            raise ValueError(f"{self.key}: the phrase must contain '{{v}}' (the effect values)")
        if not self.table.rows:
            raise ValueError(f"{self.key}: the paper table has no rows")

    @property
    def name(self) -> str:
        return self.key.upper()

    @property
    def title(self) -> str:
        return self.table.title

    @property
    def claim(self) -> str:
        return self.table.claim

    def row_labels(self) -> list[str]:
        return [r.label for r in self.table.rows]

    def expected_flops(self, config: Config, hw: int | None = None, depth: int | None = None) -> int:
        """Closed-form multiply-adds per image of the whole net (``depth`` blocks)."""
        return (self.depth if depth is None else depth) * self.flops(config, self.hw if hw is None else hw)

    def expected_mac(self, config: Config, hw: int | None = None, depth: int | None = None) -> int | None:
        """The paper's closed-form MAC per image of the whole net, or ``None`` where it gives none."""
        if self.mac is None:
            return None
        return (self.depth if depth is None else depth) * self.mac(config, self.hw if hw is None else hw)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "table": self.table.number, "title": self.title,
                "claim": self.claim, "phrase": self.phrase, "choices": list(self.choices),
                "depth": self.depth, "hw": self.hw, "closed_form_mac": self.mac is not None}
