"""The paper's guideline experiments as data: Tables 1-4 of ShuffleNet V2 (Ma et al., ECCV 2018).

Transcribed from the paper's Tables 1-4 (Sec. 2, guidelines G1-G4). Units, as in the paper: **GPU** =
one GTX 1080Ti, CUDNN 7.0 with benchmarking on, speed in **batches/s**; **ARM** = Snapdragon 810, one
thread, speed in **images/s** (Tables 2-4 label these columns "CPU"; it is the same ARM platform; the
speed protocol is the one of Sec. 2). Input 56x56 and 10 stacked blocks in Tables 1-3; Table 4's caption
gives no input size. The batch size of these micro-benchmarks is not stated (Sec. 2 gives batch sizes
only for the whole-network comparison of Fig. 1 / Table 8).

Every table has three speed columns per platform. In Tables 1-2 they are the channel multipliers
x1/x2/x4: multipliers of the base channels, not batch sizes (inferred: the speeds fall about 4x per
step on one ARM thread, and Table 2's g=1 row matches Table 3's 1-fragment row). In Table 3 they are
c = 128/256/512 (GPU) and c = 64/128/256 (ARM), i.e. again x1/x2/x4 of the first; in Table 4 they are
c = 32/64/128 on both platforms. Here every table is indexed by the same three multipliers (1, 2, 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MULTIPLIERS = (1, 2, 4)
GPU_UNIT = "batches/s"
ARM_UNIT = "images/s"
GPU_PLATFORM = "NVIDIA GTX 1080Ti, CUDNN 7.0, cudnn benchmark on (paper Sec. 2)"
ARM_PLATFORM = "Qualcomm Snapdragon 810, one thread, Neon (paper Sec. 2)"


@dataclass(frozen=True)
class PaperRow:
    """One row of a guideline table.

    ``gpu_config`` / ``arm_config`` are the row's base (x1) configuration on each platform as the table
    gives it (e.g. ``{"c1": 128, "c2": 128}``); ``gpu`` / ``arm`` are the measured speeds at x1, x2, x4.
    """

    label: str
    gpu_config: dict[str, Any]
    arm_config: dict[str, Any]
    gpu: tuple[float, float, float]
    arm: tuple[float, float, float]

    def speed(self, platform: str, multiplier: int) -> float:
        values = self.gpu if platform == "gpu" else self.arm
        return values[MULTIPLIERS.index(multiplier)]

    def config(self, platform: str) -> dict[str, Any]:
        return dict(self.gpu_config if platform == "gpu" else self.arm_config)


@dataclass(frozen=True)
class PaperTable:
    """A guideline table: its number, guideline, source, the column headings and the rows."""

    number: int
    guideline: str
    title: str
    source: str
    gpu_columns: tuple[str, str, str]
    arm_columns: tuple[str, str, str]
    rows: tuple[PaperRow, ...]
    claim: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def row(self, label: str) -> PaperRow:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def column(self, platform: str, multiplier: int) -> str:
        cols = self.gpu_columns if platform == "gpu" else self.arm_columns
        return cols[MULTIPLIERS.index(multiplier)]

    def speeds(self, platform: str, multiplier: int) -> dict[str, float]:
        """``{row label: speed}`` of one column."""
        return {r.label: r.speed(platform, multiplier) for r in self.rows}

    def relative(self, platform: str, multiplier: int) -> dict[str, float]:
        """Speeds of one column divided by the first row's."""
        col = self.speeds(platform, multiplier)
        first = col[self.rows[0].label]
        return {k: v / first for k, v in col.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.number, "guideline": self.guideline, "title": self.title, "source": self.source,
            "claim": self.claim, "gpu_unit": GPU_UNIT, "arm_unit": ARM_UNIT,
            "gpu_columns": list(self.gpu_columns), "arm_columns": list(self.arm_columns),
            "rows": [{"label": r.label, "gpu_config": r.gpu_config, "arm_config": r.arm_config,
                      "gpu": list(r.gpu), "arm": list(r.arm)} for r in self.rows],
            "notes": list(self.notes),
        }


# Table 1 (Sec. 2) — G1: equal channel width minimises MAC. 10 blocks of 1x1 convs c1->c2->c1, 56x56.
TABLE1 = PaperTable(
    number=1, guideline="G1", title="Equal channel width minimises MAC",
    source="ShuffleNet V2 paper, Table 1 (Sec. 2, G1)",
    gpu_columns=("x1", "x2", "x4"), arm_columns=("x1", "x2", "x4"),
    rows=(
        PaperRow("1:1", {"c1": 128, "c2": 128}, {"c1": 32, "c2": 32}, (1480, 723, 232), (76.2, 21.7, 5.3)),
        PaperRow("1:2", {"c1": 90, "c2": 180}, {"c1": 22, "c2": 44}, (1296, 586, 206), (72.9, 20.5, 5.1)),
        PaperRow("1:6", {"c1": 52, "c2": 312}, {"c1": 13, "c2": 78}, (876, 489, 189), (69.1, 17.9, 4.6)),
        PaperRow("1:12", {"c1": 36, "c2": 432}, {"c1": 9, "c2": 108}, (748, 392, 163), (57.6, 15.1, 4.4)),
    ),
    claim="1:1 is the fastest ratio at equal FLOPs",
    notes=("x1/x2/x4 multiply both c1 and c2 (inferred from Tables 1-3); they are not batch sizes",
           "the paper's own per-block FLOPs differ by up to 5.5% from the 1:1 row (rounded channels), "
           "within 4% of the table's mean"),
)

# Table 2 (Sec. 2) — G2: too many groups increase MAC. 10 stacked 1x1 group convs c->c, 56x56.
TABLE2 = PaperTable(
    number=2, guideline="G2", title="Excessive group convolution increases MAC",
    source="ShuffleNet V2 paper, Table 2 (Sec. 2, G2)",
    gpu_columns=("x1", "x2", "x4"), arm_columns=("x1", "x2", "x4"),
    rows=(
        PaperRow("g=1", {"c": 128, "g": 1}, {"c": 64, "g": 1}, (2451, 1289, 437), (40.0, 10.2, 2.3)),
        PaperRow("g=2", {"c": 180, "g": 2}, {"c": 90, "g": 2}, (1725, 873, 341), (35.0, 9.5, 2.2)),
        PaperRow("g=4", {"c": 256, "g": 4}, {"c": 128, "g": 4}, (1026, 644, 338), (32.9, 8.7, 2.1)),
        PaperRow("g=8", {"c": 360, "g": 8}, {"c": 180, "g": 8}, (634, 445, 230), (27.8, 7.5, 1.8)),
    ),
    claim="speed falls as the number of groups g rises",
    notes=("text: g=8 is more than 2x slower than g=1 on GPU, up to 30% slower on ARM",),
)

# Table 3 (Sec. 2) — G3: fragmentation reduces parallelism. Blocks of Appendix Fig. 1, x10, 56x56.
TABLE3 = PaperTable(
    number=3, guideline="G3", title="Network fragmentation reduces the degree of parallelism",
    source="ShuffleNet V2 paper, Table 3 (Sec. 2, G3; block shapes: Appendix Fig. 1)",
    gpu_columns=("c=128", "c=256", "c=512"), arm_columns=("c=64", "c=128", "c=256"),
    rows=(
        PaperRow("1-fragment", {"c": 128}, {"c": 64}, (2446, 1274, 434), (40.2, 10.1, 2.3)),
        PaperRow("2-fragment-series", {"c": 128}, {"c": 64}, (1790, 909, 336), (38.6, 10.1, 2.2)),
        PaperRow("4-fragment-series", {"c": 128}, {"c": 64}, (752, 745, 349), (38.4, 10.1, 2.3)),
        PaperRow("2-fragment-parallel", {"c": 128}, {"c": 64}, (1537, 803, 320), (33.4, 9.1, 2.2)),
        PaperRow("4-fragment-parallel", {"c": 128}, {"c": 64}, (691, 572, 292), (35.0, 8.4, 2.1)),
    ),
    claim="fragmented blocks are slower than the 1-fragment block",
    notes=("c is the 1-fragment block's width; the other blocks' widths are adjusted to equal FLOPs and "
           "not given by the paper",
           "text: on GPU the 4-fragment blocks are about 3x slower than 1-fragment; ARM is much less affected"),
)

# Table 4 (Sec. 2) — G4: element-wise ops are not negligible. ResNet bottleneck x10.
TABLE4 = PaperTable(
    number=4, guideline="G4", title="Element-wise operations are non-negligible",
    source="ShuffleNet V2 paper, Table 4 (Sec. 2, G4)",
    gpu_columns=("c=32", "c=64", "c=128"), arm_columns=("c=32", "c=64", "c=128"),
    rows=(
        PaperRow("ReLU+shortcut", {"c": 32, "relu": True, "shortcut": True},
                 {"c": 32, "relu": True, "shortcut": True}, (2427, 2066, 1436), (56.7, 16.9, 5.0)),
        PaperRow("ReLU, no shortcut", {"c": 32, "relu": True, "shortcut": False},
                 {"c": 32, "relu": True, "shortcut": False}, (2647, 2256, 1735), (61.9, 18.8, 5.2)),
        PaperRow("shortcut, no ReLU", {"c": 32, "relu": False, "shortcut": True},
                 {"c": 32, "relu": False, "shortcut": True}, (2672, 2121, 1458), (57.3, 18.2, 5.1)),
        PaperRow("no ReLU, no shortcut", {"c": 32, "relu": False, "shortcut": False},
                 {"c": 32, "relu": False, "shortcut": False}, (2842, 2376, 1782), (66.3, 20.2, 5.4)),
    ),
    claim="removing ReLU and shortcut speeds the unit up, about 20% in the paper",
    notes=("c is the 'number of channels in unit'; whether bottleneck or output width is not stated "
           "(Table 4's caption); no input size given",),
)

TABLES: dict[str, PaperTable] = {"g1": TABLE1, "g2": TABLE2, "g3": TABLE3, "g4": TABLE4}
