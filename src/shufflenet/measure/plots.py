"""PNG chart of a profile's op-type breakdown, next to the paper's Fig. 2 percentages when it has them.

One 100%-stacked horizontal bar per row: this machine's buckets (Conv shown as dense / group / depthwise,
Pooling and FC apart, Other split into unclassified ops and framework time between ops), then, for Fig. 2's
models (ShuffleNet v1 1x g=3, MobileNet v2 1x), the paper's GPU and ARM pies in its five categories.

The plotting policy of the package, here for measure's figures: matplotlib is optional (a figure that
cannot be drawn becomes a note, never a crash), figures are :class:`shufflenet.result.Figure` objects whose
``draw`` callback fills a matplotlib Figure on an object-oriented Agg canvas (no display, no pyplot, no
``matplotlib.use``), and a PNG written to a path is written atomically (:func:`save_figure`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shufflenet._io import write_atomic
from shufflenet.errors import ShuffleNetError
from shufflenet.measure import optypes
from shufflenet.result import Figure, FigureUnavailable

if TYPE_CHECKING:
    from shufflenet.measure.profile_report import ProfileReport

# One hue per Fig. 2 category; Conv's three kinds are shades of its blue.
COLORS = {
    optypes.CONV_DENSE: "#1f4e9c", optypes.CONV_GROUP: "#3f7fd0", optypes.CONV_DEPTHWISE: "#8db8ec",
    optypes.ELEMWISE: "#f28e2b", optypes.DATA: "#59a14f", optypes.SHUFFLE: "#e15759",
    optypes.POOLING: "#b07aa1", optypes.FC: "#9c755f", optypes.OTHER: "#7f7f7f", optypes.OVERHEAD: "#c7c7c7",
}
PAPER_COLORS = {"Conv": "#2f63b5", "Elemwise": COLORS[optypes.ELEMWISE], "Data": COLORS[optypes.DATA],
                "Shuffle": COLORS[optypes.SHUFFLE], "Other": COLORS[optypes.OTHER]}
PAPER_LABELS = {"Conv": "Conv (paper)", "Other": "Other (paper)"}
MIN_LABEL_PCT = 4.0  # segments narrower than this get no text
BREAKDOWN_SIZE, BREAKDOWN_DPI = (10.0, 4.2), 120


def save_figure(fig: Figure, path: str | os.PathLike[str], notes: list[str] | None = None) -> Path | None:
    """Write ``fig`` as a PNG at ``path`` (atomically) and return the path; without matplotlib, add a note
    saying so to ``notes`` (when given) and return ``None``: a missing optional package never fails a run."""
    try:
        png = fig.png()
    except FigureUnavailable as exc:
        if notes is not None:
            notes.append(f"{exc}: {os.fspath(path)} not written")
        return None
    return write_atomic(path, png)


def mpl_figure(size: tuple[float, float], dpi: int = 100) -> Any:
    """An empty matplotlib Figure on its own Agg canvas (raises :class:`ShuffleNetError` without matplotlib)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MplFigure
    except ImportError as exc:
        raise ShuffleNetError("the PNG chart needs matplotlib: pip install 'shufflenet[plots]' "
                              "(or pip install matplotlib)") from exc
    fig = MplFigure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def paper_row(pie: Any) -> tuple[str, list[tuple[str, float, str]]]:
    """One of the paper's Fig. 2 pies as a labelled row of :func:`stacked_rows`."""
    return (f"paper Fig. 2\n{pie.platform}",
            [(PAPER_LABELS.get(c, c), float(pie.percent.get(c) or 0.0), PAPER_COLORS[c])
             for c in optypes.PAPER_CATEGORIES])


def stacked_rows(ax: Any, rows: list[tuple[str, list[tuple[str, float, str]]]]) -> None:
    """One 100%-stacked bar per (label, parts) row, the first on top, on a 0-100% axis."""
    for i, (_, parts) in enumerate(rows):
        stacked_bar(ax, len(rows) - 1 - i, parts)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of forward time (%)")


def unique_handles(ax: Any) -> dict[str, Any]:
    """The axes' legend entries, one per label (stacked bars repeat a label per bar), in first-seen order."""
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels, strict=True):
        seen.setdefault(lab, h)
    return seen


def stacked_bar(ax: Any, y: float, parts: list[tuple[str, float, str]]) -> None:
    left = 0.0
    for label, pct, color in parts:
        if pct <= 0:
            continue
        ax.barh(y, pct, left=left, color=color, edgecolor="white", linewidth=0.6, label=label)
        if pct >= MIN_LABEL_PCT:
            ax.text(left + pct / 2, y, f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%", ha="center",
                    va="center", fontsize=8, color="white" if color not in ("#c7c7c7", "#8db8ec") else "black")
        left += pct


def breakdown_chart(report: ProfileReport) -> Figure:
    """The op-type breakdown of ``report`` as a :class:`shufflenet.result.Figure` (drawn on demand)."""
    return Figure(f"where the time goes: {report.model}, input {'x'.join(map(str, report.input_size))}",
                  lambda fig: draw_breakdown(fig, report), key="breakdown", size=BREAKDOWN_SIZE, dpi=BREAKDOWN_DPI)


def breakdown_figure(report: ProfileReport) -> Any:
    """The matplotlib ``Figure`` of :func:`plot_breakdown` (for callers that embed it elsewhere)."""
    fig = mpl_figure(BREAKDOWN_SIZE, BREAKDOWN_DPI)
    draw_breakdown(fig, report)
    return fig


def draw_breakdown(fig: Any, report: ProfileReport) -> None:
    """Draw the op-type breakdown of ``report`` into the matplotlib Figure ``fig``: one 100%-stacked bar for
    this machine, one per Fig. 2 pie of the paper when ``report.paper`` is set."""
    ax = fig.add_subplot(1, 1, 1)
    times = report.bucket_times()
    pct = optypes.percentages(times)
    where = report.env.get("gpu_name") or report.env.get("cpu_model") or report.device
    rows: list[tuple[str, list[tuple[str, float, str]]]] = [(
        f"this machine\n{report.device}, {report.threads} thr",
        [(optypes.LABELS[k], pct[k], COLORS[k]) for k in optypes.BUCKETS],
    )]
    rows += [paper_row(pie) for pie in (report.paper or {}).values()]
    stacked_rows(ax, rows)
    cov = f", coverage {report.coverage:.2f}" if report.coverage is not None else ""
    ax.set_title(f"Where the time goes: {report.model}, input {'x'.join(map(str, report.input_size))}, "
                 f"{where}{cov}", fontsize=9)
    seen = unique_handles(ax)
    ax.legend(seen.values(), seen.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=5,
              fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()


def plot_breakdown(report: ProfileReport, path: str | os.PathLike[str]) -> Path | None:
    """Write the op-type breakdown of ``report`` as a PNG at ``path`` (written atomically) and return it.

    The paper's GPU and ARM bars (Fig. 2) are added when ``report.paper`` is set, i.e. when the profiled
    model is ShuffleNet v1 1x g=3 or MobileNet v2 1x at 224x224. Without matplotlib nothing is written: a
    note in ``report.notes`` says so and ``None`` is returned.
    """
    return save_figure(breakdown_chart(report), path, report.notes)
