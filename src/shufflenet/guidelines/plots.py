"""Bar charts of the guideline tables: our speeds beside the paper's GPU and ARM speeds, each normalised to
the table's first row (per column, i.e. per channel multiplier), so platforms with different units and
absolute speeds share one axis. One PNG per table; needs matplotlib (the ``plots`` extra)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

from shufflenet._io import write_atomic
from shufflenet.errors import ShuffleNetError
from shufflenet.guidelines.runner import GuidelinesResult, TableResult


def _pyplot():  # noqa: ANN202 - matplotlib is optional
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ShuffleNetError("plots need matplotlib: pip install 'shufflenet[plots]'") from exc
    return plt


def table_figure(res: TableResult, platform: str = "") -> Any:
    """The chart of one table (a matplotlib ``Figure``): a panel per multiplier, a bar group per row.

    The legend is one for the whole figure, below the panels: inside a panel it covered the tallest
    bars (the first rows, at 1.0 by construction).
    """
    plt = _pyplot()
    mults = res.multipliers
    fig, axes = plt.subplots(1, len(mults), figsize=(4.2 * len(mults) + 1.0, 4.3), squeeze=False,
                             layout="constrained")
    width = 0.27
    for ax, m in zip(axes[0], mults, strict=True):
        col = res.column(m)
        first = col[0].spec
        labels = [r.spec.label for r in col]
        xs = range(len(col))
        ours = [r.relative for r in col]
        # error bars: +- half the IQR of the row's per-round speeds (relative to its median), scaled to rel
        err = [r.relative * r.spread / 2 for r in col]
        gpu = [r.spec.paper_gpu / first.paper_gpu for r in col]
        arm = [r.spec.paper_arm / first.paper_arm for r in col]
        ax.bar([x - width for x in xs], ours, width, yerr=err, capsize=2, label=f"ours{platform}",
               color="#4C72B0")
        ax.bar(list(xs), gpu, width, label="paper GPU", color="#DD8452")
        ax.bar([x + width for x in xs], arm, width, label="paper ARM", color="#55A868")
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([lab.replace("-fragment-", "-frag\n").replace(", ", ",\n") for lab in labels],
                           fontsize=7)
        col_name = f"x{m}" if first.column == f"x{m}" else f"x{m}: {first.column}"
        ax.set_title(f"{col_name} ({res.channels.upper()} channel set)", fontsize=9)
        ax.set_ylabel("speed relative to first row")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    verdict = f" — {res.verdict.status}" if res.verdict else ""
    title = f"{res.guideline.upper()} (paper Table {res.table.number}): {res.table.claim}{verdict}"
    fig.suptitle(textwrap.fill(title, width=55 * len(mults)), fontsize=9)
    return fig


def plot_table(res: TableResult, path: str | Path, platform: str = "") -> Path:
    """Write one table's chart (:func:`table_figure`) to ``path`` (PNG)."""
    plt = _pyplot()
    fig = table_figure(res, platform)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_atomic(path, buf.getvalue())


def save_plots(result: GuidelinesResult, directory: str | Path, prefix: str = "guidelines") -> list[Path]:
    """One PNG per table, ``DIRECTORY/PREFIX_g1.png`` ...; returns the paths written."""
    d = Path(directory)
    dev = result.options.device
    return [plot_table(t, d / f"{prefix}_{t.guideline}.png", f" ({dev})") for t in result.tables]
