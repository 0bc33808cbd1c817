"""Two reports side by side (two machines, CPU vs GPU, one thread vs two): the paper's point that the
platform decides, made on the user's own platforms.

:func:`compare_reports` lines up the two reports' sections, lists every claim whose verdict differs and
every ranking (which row or family is fastest, in order) that differs, and keeps each report's findings,
tables and figures for a two-column page (:func:`comparison_html`). Nothing is measured.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shufflenet.guidelines.judging import MIN_BAND
from shufflenet.render import RESULT_CSS, html_document, table_to_markdown, to_json
from shufflenet.report.document import Report, SectionRecord
from shufflenet.report.layout import PAGE_CSS, section_html, table_html
from shufflenet.report.section import Ranked
from shufflenet.report.writer import draw_figures, report_files, write_files
from shufflenet.result import ResultBase, Table

e = html.escape
COMPARE_CSS = """.side-by-side{display:grid;grid-template-columns:1fr 1fr;gap:1.2em;align-items:start}
.side-by-side>div{min-width:0}.side-by-side h3{font-size:1em;color:#57606a;margin:.2em 0}
.side-by-side section.report-section{border-top:none;margin-top:0}
@media (max-width:900px){.side-by-side{grid-template-columns:1fr}}"""
MISSING = "not in this report"


def _verdicts(report: Report) -> dict[str, tuple[str, str, str]]:
    """claim key -> (claim, this report's measurement, verdict)."""
    return {c.key: (c.claim, c.here, c.verdict) for _, c in report.claims()}


def _rankings(report: Report) -> dict[str, list[Ranked]]:
    return {k: v for s in report.sections for k, v in s.rankings.items()}


def _order(entries: list[Ranked] | None) -> str:
    return " > ".join(r.label for r in entries) if entries else MISSING


def _beats(x: Ranked, y: Ranked, min_band: float) -> int:
    """+1 when ``x`` ranks above ``y`` beyond the band (their relative spreads added, at least
    ``min_band``), -1 when below, 0 when within it."""
    if x.value <= 0 or y.value <= 0:
        return 0
    band = max(min_band, x.spread + y.spread)
    ratio = x.value / y.value
    return 1 if ratio > 1 + band else -1 if ratio < 1 / (1 + band) else 0


def reversals(a: list[Ranked], b: list[Ranked], min_band: float = MIN_BAND) -> list[str]:
    """The pairs ranked one way in ``a`` and the other way in ``b``, each beyond its own report's noise
    (as the guideline verdicts judge a difference): ``"x > y in A, y > x in B"``."""
    ea, eb = {r.label: r for r in a}, {r.label: r for r in b}
    common = [r.label for r in a if r.label in eb]
    out = []
    for i, x in enumerate(common):
        for y in common[i + 1:]:
            sa, sb = _beats(ea[x], ea[y], min_band), _beats(eb[x], eb[y], min_band)
            if sa and sb and sa != sb:
                hi, lo = (x, y) if sa > 0 else (y, x)
                out.append(f"{hi} > {lo} in A, {lo} > {hi} in B")
    return out


def _machine_row(report: Report) -> dict[str, Any]:
    env = report.environment
    ceilings: dict[str, Any] = {}
    try:
        ceilings = report.section("machine").data.get("ceilings") or {}
    except KeyError:
        pass
    return {"machine": report.where(), "device": env.get("device"), "threads": env.get("threads"),
            "torch": env.get("torch"), "mode": report.options.get("mode"),
            "fp32 GFLOP/s": ceilings.get("matmul_gflops"), "copy GB/s": ceilings.get("copy_gb_per_s"),
            "created": report.created}


@dataclass
class Comparison(ResultBase):
    """Two reports compared (see the module docstring); a result of the contract."""

    a: Report
    b: Report
    labels: tuple[str, str]
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    rankings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict_differences(self) -> list[dict[str, Any]]:
        return [r for r in self.verdicts if r["differs"]]

    @property
    def ranking_differences(self) -> list[dict[str, Any]]:
        """Rankings whose order differs at all (within the noise included)."""
        return [r for r in self.rankings if r["differs"]]

    @property
    def ranking_reversals(self) -> list[dict[str, Any]]:
        """Rankings where some pair is reversed beyond both reports' noise."""
        return [r for r in self.rankings if r["differs"] and r["beyond noise"]]

    def machines_table(self) -> Table:
        rows = [{"report": "A", "file": self.labels[0], **_machine_row(self.a)},
                {"report": "B", "file": self.labels[1], **_machine_row(self.b)}]
        return Table.from_rows("The two reports", rows, key="machines")

    def tables(self) -> list[Table]:
        verdicts = Table.from_rows("Verdicts, A beside B (every claim of either report)", self.verdicts,
                                   key="verdicts",
                                   notes=[f"{len(self.verdict_differences)} of {len(self.verdicts)} verdicts differ"])
        rows = [{k: v for k, v in r.items() if k != "differs"} for r in self.ranking_differences]
        ranks = Table.from_rows("Rankings that differ (highest first)", rows or [
            {"ranking": "(none)", "A": "", "B": "", "beyond noise": ""}], key="rankings",
            notes=[f"{len(self.ranking_differences)} of {len(self.rankings)} rankings differ in order; "
                   f"{len(self.ranking_reversals)} of them reverse a pair beyond both reports' noise (the "
                   f"pair's relative spreads added, at least {MIN_BAND:.0%}); the rest differ within the noise"])
        return [self.machines_table(), verdicts, ranks]

    def to_dict(self) -> dict[str, Any]:
        return {"format": "shufflenet-report-comparison", "format_version": 1, "a": self.labels[0],
                "b": self.labels[1], "machines": self.machines_table().rows, "verdicts": self.verdicts,
                "rankings": self.rankings,
                "differences": {"verdicts": self.verdict_differences, "rankings": self.ranking_differences,
                                "reversals": self.ranking_reversals}}

    def summary_text(self) -> str:
        lines = [f"A: {self.labels[0]} ({self.a.where()}, {self.a.environment.get('threads')} thread(s))",
                 f"B: {self.labels[1]} ({self.b.where()}, {self.b.environment.get('threads')} thread(s))",
                 f"{len(self.verdict_differences)} of {len(self.verdicts)} verdicts differ; "
                 f"{len(self.ranking_differences)} of {len(self.rankings)} rankings differ in order, "
                 f"{len(self.ranking_reversals)} reversed beyond the noise"]
        for r in self.verdict_differences:
            lines.append(f"  verdict {r['key']}: A {r['A']} / B {r['B']}  ({r['claim']})")
        for r in self.ranking_reversals:
            lines.append(f"  ranking {r['ranking']}: {r['beyond noise']}")
        one_sided = [r for r in self.ranking_differences if MISSING in (r["A"], r["B"])]
        for r in self.ranking_differences:
            if not r["beyond noise"] and r not in one_sided:
                lines.append(f"  ranking {r['ranking']} (within the noise): A {r['A']} / B {r['B']}")
        if one_sided:
            lines.append(f"  {len(one_sided)} ranking(s) in one report only (a section the other did not run)")
        return "\n".join(lines)

    def sections(self) -> list[tuple[str, SectionRecord | None, SectionRecord | None]]:
        keys: dict[str, int] = {}
        for s in [*self.a.sections, *self.b.sections]:
            keys.setdefault(s.key, s.order)
        out = []
        for key in sorted(keys, key=keys.__getitem__):
            out.append((key, _find(self.a, key), _find(self.b, key)))
        return out


def _find(report: Report, key: str) -> SectionRecord | None:
    try:
        return report.section(key)
    except KeyError:
        return None


def compare_reports(a: Report, b: Report, labels: tuple[str, str] = ("A", "B")) -> Comparison:
    """Line up ``a`` and ``b``: every claim's verdict in each, and every ranking in each (see the module
    docstring)."""
    va, vb = _verdicts(a), _verdicts(b)
    verdicts = []
    for key in dict.fromkeys([*va, *vb]):
        claim = (va.get(key) or vb.get(key))[0]  # type: ignore[index]
        ra, rb = va.get(key), vb.get(key)
        verdicts.append({"key": key, "claim": claim, "A": ra[2] if ra else MISSING, "A here": ra[1] if ra else "",
                         "B": rb[2] if rb else MISSING, "B here": rb[1] if rb else "",
                         "differs": (ra[2] if ra else None) != (rb[2] if rb else None)})
    ka, kb = _rankings(a), _rankings(b)
    rankings = []
    for key in dict.fromkeys([*ka, *kb]):
        oa, ob = ka.get(key), kb.get(key)
        flips = reversals(oa, ob) if oa and ob else []
        rankings.append({"ranking": key, "A": _order(oa), "B": _order(ob),
                         "differs": [r.label for r in oa or []] != [r.label for r in ob or []],
                         "beyond noise": "; ".join(flips)})
    return Comparison(a, b, labels, verdicts, rankings)


def _platform(report: Report) -> str:
    env = report.environment
    return f"{report.where()} ({env.get('device', 'cpu')}, {env.get('threads')} thread(s))"


def comparison_html(cmp: Comparison, pngs: tuple[dict[str, bytes], dict[str, bytes]],
                    missing: tuple[dict[str, str], dict[str, str]]) -> str:
    title = f"ShuffleNet V2 paper: {_platform(cmp.a)} vs {_platform(cmp.b)}"
    diffs = "".join(f"<li><strong>{e(r['key'])}</strong> ({e(r['claim'])}): A <em>{e(r['A'])}</em> "
                    f"({e(r['A here'])}), B <em>{e(r['B'])}</em> ({e(r['B here'])})</li>"
                    for r in cmp.verdict_differences) or "<li>no verdict differs</li>"
    rdiffs = "".join(f"<li><strong>{e(r['ranking'])}</strong>: {e(r['beyond noise'])}</li>"
                     for r in cmp.ranking_reversals) or "<li>no ranking is reversed beyond the noise</li>"
    parts = [f"<style>{RESULT_CSS}\n{PAGE_CSS}\n{COMPARE_CSS}</style>", '<div class="page">',
             f"<header><h1>{e(title)}</h1>",
             f'<p class="meta">A = {e(cmp.labels[0])}; B = {e(cmp.labels[1])}</p></header>',
             '<section class="report-section" id="sec-differences"><h2>What differs</h2>',
             f'<p class="finding">{len(cmp.verdict_differences)} of {len(cmp.verdicts)} verdicts and '
             f'{len(cmp.ranking_reversals)} of {len(cmp.rankings)} rankings are reversed beyond the noise between '
             "the two platforms (the table lists every ranking whose order differs). "
             "The paper's point (Sec. 1): speed depends on the platform, not on FLOPs alone.</p>",
             f"<h3>Verdicts</h3><ul>{diffs}</ul><h3>Rankings reversed beyond the noise</h3><ul>{rdiffs}</ul>",
             '<div class="shufflenet-result">', *(table_html(t) for t in cmp.tables()), "</div></section>"]
    for key, sa, sb in cmp.sections():
        title_s = (sa or sb).title  # type: ignore[union-attr]
        parts.append(f'<section class="report-section" id="sec-{e(key)}"><h2>{e(title_s)}</h2>'
                     '<div class="side-by-side">')
        for label, rep, s, p, m in (("A", cmp.a, sa, pngs[0], missing[0]), ("B", cmp.b, sb, pngs[1], missing[1])):
            parts.append(f"<div><h3>{label}: {e(rep.where())}</h3>")
            parts.append(section_html(rep, s, p, m) if s is not None else f"<p>{MISSING}</p>")
            parts.append("</div>")
        parts.append("</div></section>")
    parts.append("</div>")
    return html_document("\n".join(parts) + "\n", title=title)


def comparison_markdown(cmp: Comparison) -> str:
    out = [f"# ShuffleNet V2 paper: {_platform(cmp.a)} vs {_platform(cmp.b)}", "",
           f"A = `{cmp.labels[0]}`; B = `{cmp.labels[1]}`", ""]
    out += [table_to_markdown(t) + "\n" for t in cmp.tables()]
    for _key, sa, sb in cmp.sections():
        out.append(f"## {(sa or sb).title}")  # type: ignore[union-attr]
        for label, s in (("A", sa), ("B", sb)):
            text = (s.finding or s.message()) if s is not None else MISSING
            out.append(f"- **{label}:** {text}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_comparison(cmp: Comparison, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``compare.html`` (both reports side by side, figures embedded), ``compare.md`` and
    ``compare.json`` into the new directory ``out``, atomically."""
    pa, ma = draw_figures(cmp.a)
    pb, mb = draw_figures(cmp.b)
    html_name, md_name, json_name = report_files("compare")
    files: dict[str, bytes | str] = {html_name: comparison_html(cmp, (pa, pb), (ma, mb)),
                                     md_name: comparison_markdown(cmp), json_name: to_json(cmp.to_dict()) + "\n"}
    return write_files(out, files)
