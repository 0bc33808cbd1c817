"""Feature reuse (the ShuffleNet V2 paper, Sec. 4, Fig. 4): how many channels of block ``i`` reach block
``j`` unchanged, and, for trained weights, how much block ``j``'s first conv weighs them.

Sec. 4 of the paper: in a ShuffleNet V2 unit half of the channels go straight to the next unit through the
channel split, so "the number of directly-connected channels between the i-th building block and the
(i+j)-th building block is r^j c, where r = 0.5" (Fig. 4(b)); in DenseNet every layer's output reaches every
later layer of its dense block (Fig. 4(a), after DenseNet's Fig. 5, which shows the learned weights).

:func:`feature_reuse` traces one forward pass at dispatch level (:mod:`shufflenet.audit.reuse_trace`) and
returns a :class:`ReuseReport`:

* **structural** — ``channels[i][j]``: the channels first computed by block ``i`` that arrive unchanged
  (through split, concat, shuffle, slicing, views and copies only) in block ``j``'s input. A block's
  channels are the ones it computes: a ShuffleNet V2 basic unit of width ``c`` computes ``c / 2`` and
  passes ``c / 2`` through, so ``channels[i][i + j] = c * 0.5^j`` (exact while ``c * 0.5^j`` is an
  integer; an odd count cannot halve, so beyond that the counts are ``c * 0.5^j`` rounded). ``j = i + 1``
  is the plain sequential connection every network has; feature *reuse* is ``j >= i + 2``. ResNet's
  additive shortcut makes new values, so a ResNet reuses none.
* **learned** (``learned=True``, meaningful with trained weights) — the mean absolute weight block ``j``'s
  first conv puts on the input channels that came from block ``i`` (over those channels, the conv's output
  channels and its kernel), raw and normalised per target block (divided by the largest source's value,
  so each column's strongest source is 1), as DenseNet's Fig. 5.

Pooling counts as computation (a pooled channel is new): see :mod:`~shufflenet.audit.reuse_trace`.
"""

from __future__ import annotations

import math
import operator
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shufflenet.audit.reuse_trace import ProvenanceTrace, find_blocks, trace_provenance
from shufflenet.errors import UserInputError, cannot_run
from shufflenet.models._checks import require_module
from shufflenet.result import Column, Figure, ResultBase, Table, json_safe

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

PAPER_R = 0.5  # Sec. 4: r = 0.5, the ShuffleNet V2 unit's split ratio
PAPER_REF = "Sec. 4, Fig. 4"
REACH_COLUMNS = 4  # distances j shown one per column in the per-block table; the rest are summed

CONVENTIONS = [
    "reuse (Sec. 4, Fig. 4): a channel of block i reaches block j unchanged when every op between block i's "
    "output and block j's input only moves values (views, split/chunk/slice, cat, channel shuffle, copies); "
    "conv, BN, activations, adds and pooling make new channels",
    "a block's channels are the ones it computes (its output's other channels passed through from earlier "
    "blocks keep their origin); j = i+1 is the sequential connection every network has, reuse is j >= i+2",
    f"paper: channels[i][i+j] = c * r^j with r = {PAPER_R} for ShuffleNet V2 basic units of width c; "
    "measured r = sum of channels[i][t+1] / sum of channels[i][t] over the stage's sources i and targets t, "
    "t+1 in the stage (t+1 may be the next block when that block receives the stage's channels unchanged)",
]
LEARNED_CONVENTION = ("learned: mean |w| of block j's first conv over the input channels that came from block i "
                      "(and over its output channels and kernel); normalised = divided by the largest source's "
                      "value for the same target j, as DenseNet's Fig. 5")


@dataclass
class ReuseBlock:
    """One block of the traced network: its place, widths and the channels it computes itself."""

    index: int
    name: str
    type: str
    stage: str
    in_channels: int
    out_channels: int
    new_channels: int
    first_conv: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "type": self.type, "stage": self.stage,
                "in_channels": self.in_channels, "out_channels": self.out_channels,
                "new_channels": self.new_channels, "first_conv": self.first_conv}


@dataclass
class StageReuse:
    """The per-stage summary: measured decay ratio ``r`` and the check against the paper's ``c * r^j``.

    ``pairs``: (source, target) pairs inside the stage whose source keeps its width (a basic unit, in ==
    out == ``width``); ``exact``: those with ``channels == width * 0.5^j`` where that is an integer;
    ``rounded``: those where it is not an integer and the count is within 1 of it.
    """

    stage: str
    first: int
    last: int
    width: int
    r: float | None
    reused: int
    pairs: int
    exact: int
    rounded: int

    @property
    def blocks(self) -> int:
        return self.last - self.first + 1

    @property
    def follows_paper(self) -> bool | None:
        """Every checked pair is ``c * 0.5^j`` (rounded where that is not an integer); None: no pair."""
        return None if not self.pairs else self.exact + self.rounded == self.pairs

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "first_block": self.first, "last_block": self.last, "blocks": self.blocks,
                "width": self.width, "r": self.r, "paper_r": PAPER_R, "reused_channels": self.reused,
                "pairs": self.pairs, "exact": self.exact, "rounded": self.rounded,
                "follows_paper": self.follows_paper}


@dataclass
class LearnedReuse:
    """Block ``j``'s first conv's mean |w| on the channels from block ``i`` (``None``: it reads none)."""

    weights: list[list[float | None]]     # [source block i][target block j]
    outside: list[float | None]           # [target j]: on channels no block computed (stem, transitions)
    channels_read: list[int]              # [target j]: input channels of the first conv
    counts: list[list[int]] = field(default_factory=list)  # [i][j]: of those, channels from block i

    def normalised(self) -> tuple[list[list[float | None]], list[float | None]]:
        """Each target's values divided by its largest one (blocks and outside together)."""
        n = len(self.outside)
        w = [row[:] for row in self.weights]
        out = self.outside[:]
        for j in range(n):
            col = [w[i][j] for i in range(n) if w[i][j] is not None] + ([out[j]] if out[j] is not None else [])
            top = max(col, default=0.0)
            if not top:
                continue
            for i in range(n):
                if w[i][j] is not None:
                    w[i][j] = w[i][j] / top
            if out[j] is not None:
                out[j] = out[j] / top
        return w, out


@dataclass
class ReuseReport(ResultBase):
    """Feature reuse of one network (Sec. 4, Fig. 4); see the module docstring for what is counted.

    ``channels[i][j]`` (rows: source block ``i``, columns: target block ``j``) and ``outside[j]`` (channels
    of block ``j``'s input no block computed) are exact counts from one traced forward pass.
    """

    model_name: str
    input_size: tuple[int, ...]
    blocks: list[ReuseBlock]
    channels: list[list[int]]
    outside: list[int]
    learned: LearnedReuse | None = None
    log_scale: bool = False
    untracked_ops: dict[str, int] = field(default_factory=dict)

    # -- queries -------------------------------------------------------------------------------------

    def reach(self, i: int, j: int) -> int:
        """Channels of block ``i`` that reach block ``j`` unchanged."""
        return self.channels[i][j]

    def reused(self, i: int) -> int:
        """Channels of block ``i`` reaching blocks beyond the next one (``j >= i + 2``), summed."""
        return sum(self.channels[i][i + 2:])

    def stages(self) -> list[StageReuse]:
        """One summary per stage (consecutive blocks with the same parent module)."""
        out: list[StageReuse] = []
        groups: list[list[int]] = []
        for b in self.blocks:
            if groups and self.blocks[groups[-1][-1]].stage == b.stage:
                groups[-1].append(b.index)
            else:
                groups.append([b.index])
        m = self.channels
        for g in groups:
            first, last = g[0], g[-1]
            width = self.blocks[last].out_channels
            # The decay pairs (t, t + 1) inside the stage, and into the next block when that block receives
            # channels of the stage unchanged (ShuffleNet V2's and ResNet's next stage begins with a block;
            # DenseNet's next dense block follows a transition, which is not one).
            end = last + 1 if last + 1 < len(m) and any(m[i][last + 1] for i in g) else last
            num = den = 0
            for i in g:
                for t in range(i + 1, end):
                    if m[i][t]:
                        num += m[i][t + 1]
                        den += m[i][t]
            pairs = exact = rounded = 0
            for i in g:
                b = self.blocks[i]
                if not (b.in_channels == b.out_channels == width):
                    continue
                for t in range(i + 1, last + 1):
                    expected = width * PAPER_R ** (t - i)
                    pairs += 1
                    if expected == int(expected):
                        exact += m[i][t] == expected
                    else:
                        rounded += abs(m[i][t] - expected) < 1
            reused = sum(self.reused(i) for i in g)
            out.append(StageReuse(self.blocks[first].stage or "(root)", first, last, width,
                                  num / den if den else None, reused, pairs, exact, rounded))
        return out

    # -- the result contract ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": self.model_name, "input_size": list(self.input_size), "paper": PAPER_REF,
            "paper_r": PAPER_R, "blocks": [b.to_dict() for b in self.blocks], "channels": self.channels,
            "outside_channels": self.outside, "stages": [s.to_dict() for s in self.stages()],
            "links": self._links(), "learned": None, "untracked_ops": dict(self.untracked_ops),
        }
        if self.learned is not None:
            norm, norm_out = self.learned.normalised()
            d["learned"] = {"mean_abs_weight": self.learned.weights, "outside_mean_abs_weight": self.learned.outside,
                            "normalised": norm, "outside_normalised": norm_out,
                            "channels_read": self.learned.channels_read, "channels_read_from": self.learned.counts}
        return json_safe(d)

    def _links(self) -> list[dict[str, Any]]:
        """Long format: one row per (source, target) with channels, outside sources as source -1."""
        rows = []
        n = len(self.blocks)
        norm, norm_out = self.learned.normalised() if self.learned is not None else (None, None)
        for j in range(n):
            inp = self.blocks[j].in_channels
            sources = ([(-1, self.outside[j])] if self.outside[j] else []) + [
                (i, self.channels[i][j]) for i in range(n) if self.channels[i][j]]
            for i, c in sources:
                row = {"source": i, "source_name": self.blocks[i].name if i >= 0 else "(outside blocks)",
                       "target": j, "target_name": self.blocks[j].name, "distance": j - i if i >= 0 else None,
                       "channels": c, "fraction": c / inp if inp else None}
                if self.learned is not None:
                    raw = self.learned.weights[i][j] if i >= 0 else self.learned.outside[j]
                    nv = norm[i][j] if i >= 0 else norm_out[j]
                    row.update(mean_abs_weight=raw, normalised_weight=nv)
                rows.append(row)
        return rows

    def tables(self) -> list[Table]:
        title = f"{self.model_name}, input {'x'.join(map(str, self.input_size))}"
        stage_cols = [Column("stage"), Column("blocks"), Column("width", "c"), Column("r", "measured r", fmt=".3f"),
                      Column("paper_r", "paper r", fmt=".1f"), Column("reused_channels", "reused (j>=2)"),
                      Column("pairs", "c*r^j pairs"), Column("exact"), Column("rounded"),
                      Column("follows_paper", "follows c*r^j")]
        stages = Table(f"Feature reuse per stage ({PAPER_REF}): channels of block i reaching block i+j unchanged; "
                       f"paper: c*r^j, r = {PAPER_R} (ShuffleNet V2) — {title}", stage_cols,
                       [s.to_dict() for s in self.stages()], key="stages",
                       notes=["pairs: (i, i+j) inside the stage whose source keeps the stage width c; exact: "
                              "channels = c*0.5^j where that is an integer; rounded: within 1 of it where not "
                              "(an odd count cannot halve)"])
        reach_cols = [Column(f"j{d}", f"j={d}") for d in range(1, REACH_COLUMNS + 1)]
        block_cols = [Column("index", "i"), Column("name", "block"), Column("stage"), Column("in_channels", "in"),
                      Column("outside", "in from outside"), Column("out_channels", "out"),
                      Column("new_channels", "new"), *reach_cols,
                      Column(f"j{REACH_COLUMNS + 1}+", f"j>={REACH_COLUMNS + 1}"), Column("reused", "reused (j>=2)")]
        rows = []
        n = len(self.blocks)
        for b in self.blocks:
            i = b.index
            row: dict[str, Any] = {"index": i, "name": b.name, "stage": b.stage, "in_channels": b.in_channels,
                                   "outside": self.outside[i], "out_channels": b.out_channels,
                                   "new_channels": b.new_channels}
            for d in range(1, REACH_COLUMNS + 1):
                row[f"j{d}"] = self.channels[i][i + d] if i + d < n else None
            row[f"j{REACH_COLUMNS + 1}+"] = sum(self.channels[i][i + REACH_COLUMNS + 1:])
            row["reused"] = self.reused(i)
            rows.append(row)
        notes = ["new: channels the block computes (the rest of its output passed through); "
                 "in from outside: input channels no block computed (stem, transitions)"]
        if self.untracked_ops:
            calls = ", ".join(f"{k} x{v}" for k, v in sorted(self.untracked_ops.items()))
            notes.append(f"the trace could not follow {calls}: those outputs count as new, so the counts are "
                         "lower bounds")
        per_block = Table(f"Channels of block i reaching block i+j unchanged ({PAPER_REF}) — {title}", block_cols,
                          rows, key="blocks", notes=notes)
        link_rows = self._links()
        link_cols = [Column("source"), Column("source_name"), Column("target"), Column("target_name"),
                     Column("distance"), Column("channels"), Column("fraction", fmt=".3f")]
        if self.learned is not None:
            link_cols += [Column("mean_abs_weight", fmt=".4g"), Column("normalised_weight", fmt=".3f")]
        links = Table(f"Reuse matrix, long format ({PAPER_REF}) — {title}", link_cols, link_rows, key="links",
                      display=False)
        out = [stages, per_block, links]
        if self.learned is not None:
            out.append(self._learned_table(title))
        return out

    def _learned_table(self, title: str) -> Table:
        assert self.learned is not None
        lw = self.learned
        rows = []
        for j, b in enumerate(self.blocks):
            adjacent = lw.weights[j - 1][j] if j else None
            earlier = [(lw.weights[i][j], lw.counts[i][j]) for i in range(max(j - 1, 0)) if lw.counts[i][j]]
            total = sum(c for _, c in earlier)
            mean_earlier = sum(v * c for v, c in earlier) / total if total else None
            rows.append({"index": j, "name": b.name, "first_conv": b.first_conv, "channels_read": lw.channels_read[j],
                         "adjacent": adjacent, "earlier": mean_earlier, "outside": lw.outside[j],
                         "ratio": mean_earlier / adjacent if mean_earlier is not None and adjacent else None})
        cols = [Column("index", "j"), Column("name", "block"), Column("first_conv", "first conv"),
                Column("channels_read", "channels read"), Column("adjacent", "mean|w| from j-1", fmt=".4g"),
                Column("earlier", "mean|w| from i<j-1", fmt=".4g"), Column("outside", "mean|w| from outside", fmt=".4g"),
                Column("ratio", "earlier / adjacent", fmt=".3f")]
        return Table(f"Learned reuse (as DenseNet's Fig. 5): mean |w| of block j's first conv by the origin of its "
                     f"input channels — {title}", cols, rows, key="learned",
                     notes=["from i<j-1: mean over the channels of all earlier blocks the conv reads; "
                            "outside: channels no block computed (stem, transitions)"])

    def figures(self) -> list[Figure]:
        n = len(self.blocks)
        size = (7.0, 6.0) if n <= 30 else (9.0, 8.0)
        figs = [Figure(f"{self.model_name}: channels of block i reaching block j unchanged ({PAPER_REF}(b)), "
                       "as a share of block j's input channels", self._draw_structural, key="reuse", size=size)]
        if self.learned is not None:
            figs.append(Figure(f"{self.model_name}: mean |w| of block j's first conv on block i's channels "
                               "(as DenseNet's Fig. 5), normalised per target", self._draw_learned,
                               key="learned_reuse", size=size))
        return figs

    def conventions(self) -> list[str]:
        return CONVENTIONS + ([LEARNED_CONVENTION] if self.learned is not None else [])

    # -- figures ---------------------------------------------------------------------------------------

    def _stage_edges(self) -> list[int]:
        return [s.first for s in self.stages()[1:]]

    def _draw_structural(self, fig: MplFigure) -> None:
        n = len(self.blocks)
        grid = [[self.channels[i][j] / self.blocks[j].in_channels if i < j and self.blocks[j].in_channels
                 else math.nan for j in range(n)] for i in range(n)]
        self._heatmap(fig, grid, [str(i) for i in range(n)], f"{self.model_name}: share of block j's input "
                      f"channels that come unchanged from block i ({PAPER_REF}(b))", "channels / block j's input")

    def _draw_learned(self, fig: MplFigure) -> None:
        assert self.learned is not None
        n = len(self.blocks)
        norm, norm_out = self.learned.normalised()
        grid = [[math.nan if norm_out[j] is None else norm_out[j] for j in range(n)]]
        grid += [[norm[i][j] if i < j and norm[i][j] is not None else math.nan for j in range(n)] for i in range(n)]
        self._heatmap(fig, grid, ["out"] + [str(i) for i in range(n)],
                      f"{self.model_name}: mean |w| of block j's first conv on block i's channels "
                      "(row 'out': stem/transitions), normalised per j", "mean |w| / max over i", offset=1)

    def _heatmap(self, fig: MplFigure, grid: list[list[float]], row_labels: Sequence[str], title: str,
                 bar_label: str, offset: int = 0) -> None:
        import numpy as np
        from matplotlib.colors import LogNorm, Normalize

        values = np.array(grid, dtype=float)
        cmap = _cmap()
        if self.log_scale:  # zeros drawn in the lowest colour, below the smallest positive share
            positive = values[np.isfinite(values) & (values > 0)]
            vmin = min(float(positive.min()) if positive.size else 1.0, 1 / 64)
            values = np.where(values == 0, vmin / 2, values)
            norm: Normalize = LogNorm(vmin=vmin, vmax=1.0)
            cmap = cmap.with_extremes(under=cmap(0.0))
        else:
            norm = Normalize(vmin=0.0, vmax=1.0)
        data = np.ma.masked_invalid(values)
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
        n_cols, n_rows = (len(grid[0]) if grid else 0), len(row_labels)
        ax.set_xticks(range(0, n_cols, 1 if n_cols <= 21 else 5))
        rows = range(0, n_rows, 1 if n_rows <= 21 else 5)
        ax.set_yticks(rows, [row_labels[k] for k in rows])
        for edge in self._stage_edges():
            ax.axvline(edge - 0.5, color="0.4", lw=0.6)
            ax.axhline(edge - 0.5 + offset, color="0.4", lw=0.6)
        ax.set_xlabel("target block j")
        ax.set_ylabel("source block i")
        ax.set_title(textwrap.fill(title, 80), fontsize=9)
        fig.colorbar(im, ax=ax, label=bar_label + (" (log scale)" if self.log_scale else ""),
                     extend="min" if self.log_scale else "neither")
        fig.tight_layout()


def _cmap() -> Any:
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad="white")


# --------------------------------------------------------------------------------------------- API

def feature_reuse(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), *,
                  blocks: Sequence[str | type] | None = None, learned: bool = False, model_name: str | None = None,
                  log_scale: bool = False) -> ReuseReport:
    """Trace ``model`` once on a random input of ``input_size`` and count, for every pair of blocks
    ``i < j``, the channels of block ``i`` that reach block ``j`` unchanged (Sec. 4, Fig. 4).

    Args:
        model: any ``nn.Module`` that runs eagerly (it is put in eval mode for the pass, then restored).
        input_size: NCHW (or any shape the model takes).
        blocks: block class names (or classes); default: ShuffleNet V1/V2 units, DenseNet layers, ResNet
            and MobileNet blocks, else the composite children of the model's ``nn.Sequential`` stages.
        learned: also report the mean |w| of each block's first conv by the origin of its input channels
            (meaningful for trained weights: load them first with :func:`shufflenet.models.load_weights`).
        model_name: the name shown in tables and figures (default: the model's class name).
        log_scale: draw the heatmaps with a logarithmic colour scale (ShuffleNet V2's reuse decays as 0.5^j).

    Raises:
        UserInputError: a malformed ``input_size``, no blocks found, or an input the model cannot run on.
    """
    require_module(model, "model", "feature_reuse")
    size = _check_size(input_size)
    found = find_blocks(model, blocks)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(size, generator=gen).to(device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        trace = trace_provenance(model, x, found)
    except UserInputError:
        raise
    except RuntimeError as exc:  # the model rejects the input (wrong channel count, a map smaller than its strides)
        raise cannot_run(exc, size) from exc
    finally:
        model.train(was_training)
    if not trace.blocks:
        raise UserInputError(f"no block ran in the forward pass (blocks: {', '.join(n for n, _ in found[:5])})")
    return _report(trace, model_name or type(model).__name__, size, learned, log_scale)


def _check_size(input_size: Any) -> tuple[int, ...]:
    try:
        size = tuple(operator.index(d) for d in input_size)
    except TypeError:
        raise UserInputError(f"input_size must be a sequence of positive integers, got {input_size!r}") from None
    if len(size) < 2 or any(d <= 0 for d in size):
        raise UserInputError(f"input_size must be positive integers N, C, ... (e.g. 1x3x224x224), got {input_size!r}")
    return size


def _report(trace: ProvenanceTrace, name: str, size: tuple[int, ...], learned: bool,
            log_scale: bool) -> ReuseReport:
    n = len(trace.blocks)
    block_of = {s.index: s.block for s in trace.sources if s.kind == "block"}
    channels = [[0] * n for _ in range(n)]
    outside = [0] * n
    for (src, tgt), count in trace.links().items():
        if src in block_of:
            channels[block_of[src]][tgt] += count
        else:
            outside[tgt] += count
    new = {s.block: s.channels for s in trace.sources if s.kind == "block"}
    blocks = [ReuseBlock(b.index, b.name, b.type_name, b.stage, b.in_channels, b.out_channels, new.get(b.index, 0),
                         _conv_name(b.first_conv.weight_name) if b.first_conv else None) for b in trace.blocks]
    lw = _learned(trace, block_of) if learned else None
    return ReuseReport(name, size, blocks, channels, outside, lw, log_scale, dict(trace.replay_failures))


def _conv_name(weight_name: str) -> str:
    return weight_name[: -len(".weight")] if weight_name.endswith(".weight") else weight_name


def _learned(trace: ProvenanceTrace, block_of: dict[int, int]) -> LearnedReuse:
    n = len(trace.blocks)
    sums = [[0.0] * n for _ in range(n)]
    counts = [[0] * n for _ in range(n)]
    out_sum, out_count, read = [0.0] * n, [0] * n, [0] * n
    for b in trace.blocks:
        conv = b.first_conv
        if conv is None:
            continue
        j = b.index
        read[j] = len(conv.sources)
        for src, w in zip(conv.sources, conv.mean_abs_weight, strict=True):
            if src < 0:
                continue
            i = block_of.get(src)
            if i is None:
                out_sum[j] += w
                out_count[j] += 1
            elif i < j:
                sums[i][j] += w
                counts[i][j] += 1
    weights = [[sums[i][j] / counts[i][j] if counts[i][j] else None for j in range(n)] for i in range(n)]
    outside = [out_sum[j] / out_count[j] if out_count[j] else None for j in range(n)]
    return LearnedReuse(weights, outside, read, counts)


__all__ = ["PAPER_R", "LearnedReuse", "ReuseBlock", "ReuseReport", "StageReuse", "feature_reuse"]
