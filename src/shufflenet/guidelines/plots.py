"""Bar charts of the guideline tables: our speeds beside the paper's GPU and ARM speeds, each normalised to
the table's first row (per column, i.e. per channel multiplier), so platforms with different units and
absolute speeds share one axis. One chart per table; needs matplotlib (the ``plots`` extra).

The charts are :class:`shufflenet.result.Figure` objects: a draw callback filling the matplotlib Figure a
renderer hands it, on an object-oriented Agg canvas. Nothing here imports pyplot or switches the user's
matplotlib backend (a notebook's inline one, say).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shufflenet._io import write_atomic
from shufflenet.errors import ShuffleNetError
from shufflenet.result import Figure, FigureUnavailable

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from shufflenet.guidelines.runner import GuidelinesResult, TableResult

PANEL_WIDTH, EXTRA_WIDTH, HEIGHT = 4.2, 1.0, 4.3
DPI = 110
BAR = 0.27
COLORS = {"ours": "#4C72B0", "gpu": "#DD8452", "arm": "#55A868"}


def _tick(label: str) -> str:
    return label.replace("-fragment-", "-frag\n").replace(", ", ",\n")


def draw_table(fig: MplFigure, res: TableResult, platform: str = "") -> None:
    """Draw one table's chart into ``fig``: a panel per multiplier, a bar group per row.

    The legend is one for the whole figure, below the panels: inside a panel it covered the tallest
    bars (the first rows, at 1.0 by construction).
    """
    mults = res.multipliers
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, len(mults), squeeze=False)
    for ax, m in zip(axes[0], mults, strict=True):
        col = res.column(m)
        first = col[0].spec
        xs = list(range(len(col)))
        ours = [r.relative for r in col]
        # error bars: +- half the IQR of the row's per-round speeds (relative to its median), scaled to rel
        err = [r.relative * r.spread / 2 for r in col]
        gpu = [r.spec.paper_gpu / first.paper_gpu for r in col]
        arm = [r.spec.paper_arm / first.paper_arm for r in col]
        ax.bar([x - BAR for x in xs], ours, BAR, yerr=err, capsize=2, label=f"ours{platform}",
               color=COLORS["ours"])
        ax.bar(xs, gpu, BAR, label="paper GPU", color=COLORS["gpu"])
        ax.bar([x + BAR for x in xs], arm, BAR, label="paper ARM", color=COLORS["arm"])
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xticks(xs)
        ax.set_xticklabels([_tick(r.spec.label) for r in col], fontsize=7)
        col_name = f"x{m}" if first.column == f"x{m}" else f"x{m}: {first.column}"
        ax.set_title(f"{col_name} ({res.channels.upper()} channel set)", fontsize=9)
        ax.set_ylabel("speed relative to first row")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(textwrap.fill(chart_title(res), width=55 * len(mults)), fontsize=9)


def chart_title(res: TableResult) -> str:
    """``G2 (paper Table 2): speed falls as the number of groups g rises — holds``."""
    verdict = f" — {res.verdict.status}" if res.verdict else ""
    return f"{res.guideline.upper()} (paper Table {res.table.number}): {res.table.claim}{verdict}"


def table_chart(res: TableResult, platform: str = "") -> Figure:
    """One table's chart as a :class:`shufflenet.result.Figure` (drawn only when asked for)."""
    n = max(1, len(res.multipliers))

    def draw(fig: MplFigure) -> None:
        draw_table(fig, res, platform)

    return Figure(chart_title(res), draw, key=res.guideline, size=(PANEL_WIDTH * n + EXTRA_WIDTH, HEIGHT),
                  dpi=DPI)


def table_figure(res: TableResult, platform: str = "") -> Any:
    """The chart of one table as a matplotlib ``Figure`` on its own Agg canvas (no pyplot), e.g. to show
    in a notebook or inspect in a test."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MplFigureClass
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ShuffleNetError("plots need matplotlib: pip install 'shufflenet[plots]'") from exc
    chart = table_chart(res, platform)
    fig = MplFigureClass(figsize=chart.size)
    FigureCanvasAgg(fig)
    chart.draw(fig)
    return fig


def plot_table(res: TableResult, path: str | Path, platform: str = "") -> Path:
    """Write one table's chart to ``path`` (PNG, atomically)."""
    try:
        png = table_chart(res, platform).png()
    except FigureUnavailable as exc:
        raise ShuffleNetError(str(exc)) from exc
    return write_atomic(path, png)


def save_plots(result: GuidelinesResult, directory: str | Path, prefix: str = "guidelines") -> list[Path]:
    """One PNG per table, ``DIRECTORY/PREFIX_g1.png`` ...; returns the paths written."""
    d = Path(directory)
    dev = result.options.device
    return [plot_table(t, d / f"{prefix}_{t.guideline}.png", f" ({dev})") for t in result.results]
