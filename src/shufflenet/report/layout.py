"""The report's pages: one self-contained HTML document (figures embedded as PNG ``data:`` URIs, no
network access needed) and one Markdown document (figures linked as the PNG files beside it), both made
of the one renderer's tables (:mod:`shufflenet.render`).

Each section: its number and title, its finding (the paper's and this machine's, one sentence), further
headlines, why it did not run or how it failed (the traceback folded away), its tables, its figures, notes.
"At a glance" comes first; a table of contents links every section with its status.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence

from shufflenet.render import RESULT_CSS, html_document, table_to_html, table_to_markdown
from shufflenet.report.document import Report, SectionRecord, figure_file
from shufflenet.report.section import VERDICTS
from shufflenet.result import Table

e = html.escape

PAGE_CSS = """body{margin:0;background:#f6f8fa;color:#1b1f24;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
.page{max-width:1180px;margin:0 auto;padding:1.2em 1.5em 3em;background:#fff;box-shadow:0 0 0 1px #d0d7de}
header h1{font-size:1.55em;margin:.2em 0 .3em}header .meta{color:#57606a;font-size:.9em;margin:.15em 0}
header code{font-size:.95em;background:#f3f5f7;padding:.05em .3em;border-radius:3px;word-break:break-all}
nav.toc{border:1px solid #d0d7de;border-radius:6px;padding:.5em 1em;margin:1em 0;background:#fafbfc}
nav.toc ol{margin:.3em 0;padding-left:1.4em;columns:2}nav.toc a{text-decoration:none;color:#0969da}
section.report-section{border-top:2px solid #d0d7de;margin-top:1.8em;padding-top:.4em}
section.report-section h2{font-size:1.3em;margin:.4em 0}
p.finding{font-size:1.05em;background:#eef6ff;border-left:4px solid #0969da;padding:.5em .8em;margin:.6em 0}
ul.headlines{margin:.3em 0 .8em}ul.headlines li{margin:.2em 0}
.badge{display:inline-block;font-size:.75em;padding:.05em .5em;border-radius:1em;margin-left:.4em;
vertical-align:middle;border:1px solid #d0d7de;color:#57606a}
.badge.failed{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.badge.unavailable{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
div.failure{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:.5em .9em;margin:.6em 0}
div.unavailable{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5em .9em;margin:.6em 0}
div.failure pre{white-space:pre-wrap;font-size:.8em;max-height:24em;overflow:auto}
td.v-holds{background:#dafbe1}td.v-partly-holds{background:#eefbe0}td.v-mixed{background:#fff8c5}
td.v-does-not-hold{background:#ffebe9}td.v-inconclusive{background:#f3f5f7}td.v-n-a{color:#57606a}
.shufflenet-result table{font-size:.9em}.shufflenet-result figure{text-align:center}
.shufflenet-result figcaption{color:#57606a;font-size:.88em}p.took{color:#8c959f;font-size:.8em}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:.6em 1.2em}
.figures figure.wide{grid-column:1/-1}
details.conventions{color:#57606a;font-size:.88em;margin:.5em 0}
@media (max-width:760px){nav.toc ol{columns:1}.page{padding:.8em}}"""

# A figure at least this wide (inches) takes the page's width; narrower ones sit two to a row.
WIDE_INCHES = 9.0
_VERDICT_CELL = re.compile(r"<td>(" + "|".join(re.escape(v) for v in VERDICTS) + r")</td>")


def _verdict_class(verdict: str) -> str:
    return "v-" + re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")


def table_html(t: Table) -> str:
    """The renderer's table, with verdict cells coloured."""
    return _VERDICT_CELL.sub(lambda m: f'<td class="{_verdict_class(m.group(1))}">{m.group(1)}</td>',
                             table_to_html(t))


def section_number(report: Report, key: str) -> int:
    return [s.key for s in report.sections].index(key) + 1


def _status_badge(s: SectionRecord) -> str:
    return "" if s.ok else f'<span class="badge {s.status}">{e(s.status)}</span>'


def meta_lines(report: Report) -> list[str]:
    env = report.environment
    libs = ", ".join(f"{k} {env[k]}" for k in ("torch", "torchvision") if env.get(k))
    failed = report.failed
    lines = [f"{report.where()} · device {env.get('device')} · {env.get('threads')} thread(s) · "
             f"{report.options.get('mode')} mode · {libs}",
             f"created {report.created} · took {report.wall_s:.0f} s · shufflenet {report.version}"
             + (f" · {len(failed)} section(s) failed: {', '.join(s.key for s in failed)}" if failed else "")]
    return lines


def section_html(report: Report, s: SectionRecord, pngs: Mapping[str, bytes], missing: Mapping[str, str]) -> str:
    n = section_number(report, s.key)
    out = [f'<section class="report-section status-{s.status}" id="sec-{e(s.key)}">',
           f"<h2>{n}. {e(s.title)}{_status_badge(s)}</h2>"]
    if s.finding:
        out.append(f'<p class="finding">{e(s.finding)}</p>')
    if s.headlines:
        out.append('<ul class="headlines">' + "".join(f"<li>{e(h)}</li>" for h in s.headlines) + "</ul>")
    if s.status == "unavailable":
        out.append(f'<div class="unavailable"><p><strong>Not run here:</strong> {e(s.reason)}</p></div>')
    elif s.status == "failed":
        out.append(f'<div class="failure"><p><strong>This section failed:</strong> {e(s.error)}</p>'
                   "<p>The other sections ran and are complete; rerun this one with "
                   f"<code>shufflenet report --sections {e(s.key)} --debug</code>.</p>"
                   f"<details><summary>traceback</summary><pre>{e(s.traceback)}</pre></details></div>")
    body = ['<div class="shufflenet-result">']
    body += [table_html(t) for t in s.tables if t.display]
    if s.figures:
        body.append('<div class="figures">')
    for i, fig in enumerate(s.figures):
        name = figure_file(s.key, i, fig.key)
        wide = ' class="wide"' if fig.size[0] >= WIDE_INCHES else ""
        if name in pngs:
            data = base64.b64encode(pngs[name]).decode("ascii")
            body.append(f'<figure{wide}><img alt="{e(fig.title)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(fig.title)}</figcaption></figure>")
        else:
            body.append(f'<p class="note">{e(missing.get(name, f"figure {fig.title!r} not drawn"))}</p>')
    if s.figures:
        body.append("</div>")
    body.append("</div>")
    out += body
    if s.notes:
        out.append('<details class="conventions"><summary>conventions</summary><ul>'
                   + "".join(f"<li>{e(n)}</li>" for n in s.notes) + "</ul></details>")
    if s.wall_s:
        out.append(f'<p class="took">section took {s.wall_s:.1f} s</p>')
    out.append("</section>")
    return "\n".join(out)


def report_html(report: Report, pngs: Mapping[str, bytes], missing: Mapping[str, str] | None = None) -> str:
    """The whole report as one HTML page (see the module docstring)."""
    missing = missing or {}
    toc = "".join(f'<li><a href="#sec-{e(s.key)}">{e(s.title)}</a>{_status_badge(s)}</li>' for s in report.sections)
    command = " ".join(report.command)
    parts = [f"<style>{RESULT_CSS}\n{PAGE_CSS}</style>", '<div class="page">',
             "<header><h1>" + e(report.title()) + "</h1>",
             *(f'<p class="meta">{e(line)}</p>' for line in meta_lines(report)),
             f'<p class="meta">command: <code>{e(command)}</code></p></header>',
             f'<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>',
             *(section_html(report, s, pngs, missing) for s in report.sections), "</div>"]
    return html_document("\n".join(parts) + "\n", title=report.title())


def _md(text: str) -> str:
    return text.replace("\n", " ")


def section_markdown(report: Report, s: SectionRecord, links: Mapping[str, str],
                     missing: Mapping[str, str]) -> str:
    n = section_number(report, s.key)
    out = [f"## {n}. {s.title}" + ("" if s.ok else f" ({s.status})"), ""]
    if s.finding:
        out += [f"> {_md(s.finding)}", ""]
    if s.headlines:
        out += [f"- {_md(h)}" for h in s.headlines] + [""]
    if s.status == "unavailable":
        out += [f"**Not run here:** {_md(s.reason)}", ""]
    elif s.status == "failed":
        out += [f"**This section failed:** {_md(s.error)} (the other sections are complete; rerun it with "
                f"`shufflenet report --sections {s.key} --debug`)", "", "```", s.traceback.rstrip(), "```", ""]
    for t in s.tables:
        if t.display:
            out += [table_to_markdown(t), ""]
    for i, fig in enumerate(s.figures):
        name = figure_file(s.key, i, fig.key)
        if name in links:
            out += [f"![{_md(fig.title)}](<{links[name]}>)", ""]
        else:
            out += [f"*{_md(missing.get(name, f'figure {fig.title!r} not drawn'))}*", ""]
    if s.notes:
        out += ["<details><summary>conventions</summary>", ""] + [f"- {_md(x)}" for x in s.notes] + ["", "</details>", ""]
    return "\n".join(out)


def report_markdown(report: Report, links: Mapping[str, str], missing: Mapping[str, str] | None = None) -> str:
    """The whole report as GitHub-flavoured Markdown, figures linked to ``links`` (file name -> link)."""
    missing = missing or {}
    out = [f"# {report.title()}", ""] + [f"*{_md(line)}*  " for line in meta_lines(report)]
    out += [f"*command:* `{' '.join(report.command)}`", "", "**Contents**", ""]
    out += [f"{i}. [{s.title}](#{_anchor(i, s.title)})" + ("" if s.ok else f" ({s.status})")
            for i, s in enumerate(report.sections, start=1)]
    out.append("")
    out += [section_markdown(report, s, links, missing) for s in report.sections]
    return "\n".join(out).rstrip() + "\n"


def _anchor(n: int, title: str) -> str:
    """GitHub's heading anchor of ``## n. title``."""
    text = f"{n}. {title}".lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def figure_names(report: Report) -> Sequence[tuple[SectionRecord, int, str]]:
    return [(s, i, figure_file(s.key, i, f.key)) for s in report.sections for i, f in enumerate(s.figures)]
