"""The paper's measured speeds, as data (transcribed from the ShuffleNet V2 paper's Table 8 and Appendix Table 1).

- **Table 8**: GPU = GTX 1080Ti, batch 8, **batches/s**; ARM = Snapdragon 810, one thread,
  batch 1, **images/s**; input 224x224 unless a row says otherwise. MFLOPs are multiply-adds.
- **Appendix Table 1(b)**: 10 stacked units; GPU batches/s at batch 1, ARM images/s;
  ``c`` is the ShuffleNet v2 channel count, the other nets' widths matched to its FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table8Row:
    """One row of paper Table 8. ``gpu``/``arm`` are ``None`` where the paper gives "-"."""

    group: str
    model: str
    mflops: int
    top1_err: float
    gpu: float | None
    arm: float | None
    input: int = 224


TABLE8_SOURCE = "ShuffleNet V2 paper, Table 8"
TABLE8: tuple[Table8Row, ...] = (
    Table8Row("~40M", "ShuffleNet v2 0.5x", 41, 39.7, 417, 57.0),
    Table8Row("~40M", "0.25 MobileNet v1", 41, 49.4, 502, 36.4),
    Table8Row("~40M", "0.4 MobileNet v2 (our impl.)", 43, 43.4, 333, 33.2, input=160),
    Table8Row("~40M", "0.15 MobileNet v2 (our impl.)", 39, 55.1, 351, 33.6),
    Table8Row("~40M", "ShuffleNet v1 0.5x (g=3)", 38, 43.2, 347, 56.8),
    Table8Row("~40M", "DenseNet 0.5x (our impl.)", 42, 58.6, 366, 39.7),
    Table8Row("~40M", "Xception 0.5x (our impl.)", 40, 44.9, 384, 52.9),
    Table8Row("~40M", "IGCV2-0.25", 46, 45.1, 183, 31.5),
    Table8Row("~140M", "ShuffleNet v2 1x", 146, 30.6, 341, 24.4),
    Table8Row("~140M", "0.5 MobileNet v1", 149, 36.3, 382, 16.5),
    Table8Row("~140M", "0.75 MobileNet v2 (our impl.)", 145, 32.1, 235, 15.9, input=192),
    Table8Row("~140M", "0.6 MobileNet v2 (our impl.)", 141, 33.3, 249, 14.9),
    Table8Row("~140M", "ShuffleNet v1 1x (g=3)", 140, 32.6, 213, 21.8),
    Table8Row("~140M", "DenseNet 1x (our impl.)", 142, 45.2, 279, 15.8),
    Table8Row("~140M", "Xception 1x (our impl.)", 145, 34.1, 278, 19.5),
    Table8Row("~140M", "IGCV2-0.5", 156, 34.5, 132, 15.5),
    Table8Row("~140M", "IGCV3-D (0.7)", 210, 31.5, 143, 11.7),
    Table8Row("~300M", "ShuffleNet v2 1.5x", 299, 27.4, 255, 11.8),
    Table8Row("~300M", "0.75 MobileNet v1", 325, 31.6, 314, 10.6),
    Table8Row("~300M", "1.0 MobileNet v2", 300, 28.0, 180, 8.9),
    Table8Row("~300M", "1.0 MobileNet v2 (our impl.)", 301, 28.3, 180, 8.9),
    Table8Row("~300M", "ShuffleNet v1 1.5x (g=3)", 292, 28.5, 164, 10.3),
    Table8Row("~300M", "DenseNet 1.5x (our impl.)", 295, 39.9, 274, 9.7),
    Table8Row("~300M", "CondenseNet (G=C=8)", 274, 29.0, None, None),
    Table8Row("~300M", "Xception 1.5x (our impl.)", 305, 29.4, 219, 10.5),
    Table8Row("~300M", "IGCV3-D", 318, 27.8, 102, 6.3),
    Table8Row("~500M+", "ShuffleNet v2 2x", 591, 25.1, 217, 6.7),
    Table8Row("~500M+", "1.0 MobileNet v1", 569, 29.4, 247, 6.5),
    Table8Row("~500M+", "1.4 MobileNet v2", 585, 25.3, 137, 5.4),
    Table8Row("~500M+", "1.4 MobileNet v2 (our impl.)", 587, 26.7, 137, 5.4),
    Table8Row("~500M+", "ShuffleNet v1 2x (g=3)", 524, 26.3, 133, 6.4),
    Table8Row("~500M+", "DenseNet 2x (our impl.)", 519, 34.6, 197, 6.1),
    Table8Row("~500M+", "CondenseNet (G=C=4)", 529, 26.2, None, None),
    Table8Row("~500M+", "Xception 2x (our impl.)", 525, 27.6, 174, 6.7),
    Table8Row("~500M+", "IGCV2-1.0", 564, 29.3, 81, 4.9),
    Table8Row("~500M+", "IGCV3-D (1.4)", 610, 25.5, 82, 4.5),
    Table8Row("bottom", "ShuffleNet v2 2x (with SE)", 597, 24.6, 161, 5.6),
    Table8Row("bottom", "NASNet-A (4 @ 1056, our impl.)", 564, 26.0, 130, 4.6),
    Table8Row("bottom", "PNASNet-5 (our impl.)", 588, 25.8, 115, 4.1),
)


def table8_row(model: str) -> Table8Row:
    """The Table 8 row whose model label is ``model`` (exact)."""
    for row in TABLE8:
        if row.model == model:
            return row
    raise KeyError(model)


APP_TABLE1B_SOURCE = "ShuffleNet V2 paper, Appendix Table 1(b)"
APP_TABLE1B_CHANNELS = (64, 128, 256)
# (input side, model) -> (GPU batches/s at c = 64, 128, 256), (ARM images/s at c = 64, 128, 256)
APP_TABLE1B: dict[tuple[int, str], tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    (56, "ShuffleNet v2"): ((216, 142, 81), (34.8, 12.3, 3.9)),
    (56, "ShuffleNet v1"): ((127, 73, 45), (24.3, 9.4, 3.0)),
    (56, "MobileNet v2"): ((89, 125, 69), (25.8, 10.0, 3.0)),
    (56, "Xception"): ((185, 52, 68), (27.0, 9.7, 3.1)),
    (28, "ShuffleNet v2"): ((407, 313, 237), (174.5, 53.4, 16.6)),
    (28, "ShuffleNet v1"): ((298, 222, 60), (139.7, 43.9, 13.2)),
    (28, "MobileNet v2"): ((381, 286, 189), (118.3, 46.2, 13.3)),
    (28, "Xception"): ((254, 238, 169), (117.0, 45.8, 14.0)),
}


def app_table1b(side: int, model: str, c: int) -> tuple[float, float]:
    """Appendix Table 1(b): (GPU batches/s, ARM images/s) of ``model`` at ``side`` x ``side``, width c."""
    gpu, arm = APP_TABLE1B[(side, model)]
    i = APP_TABLE1B_CHANNELS.index(c)
    return gpu[i], arm[i]
