"""The one renderer: any result of the contract in :mod:`shufflenet.result` as a terminal table, CSV,
JSON, Markdown or HTML, and :func:`write_result` to write it to a file chosen by its extension.

* ``table`` — the conventions, then each table aligned (numbers right-aligned, units in the headers), its
  notes below it.
* ``csv`` — one table's raw values (the first, or the one named by ``table=``): CSV has no room for two.
  A table marked ``display=False`` appears in CSV only.
* ``json`` — ``to_dict()``, with non-finite floats as ``null``.
* ``md`` — GitHub-flavoured Markdown; figures are linked when :func:`write_result` writes them beside the
  file, and left out on standard output.
* ``html`` — a self-contained fragment (``<section class="shufflenet-result">``, its own small style, the
  figures embedded as PNG ``data:`` URIs), ready to drop into a page or to open in a browser.

A figure that cannot be drawn (matplotlib not installed) becomes a note; it never fails the rendering.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shufflenet._io import write_atomic
from shufflenet.errors import UserInputError
from shufflenet.result import Column, Figure, FigureUnavailable, Result, Table, json_safe

FORMATS = ("table", "json", "csv", "md", "html")
EXTENSIONS = {".json": "json", ".csv": "csv", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
              ".txt": "table", ".table": "table", ".text": "table"}

RESULT_CSS = """.shufflenet-result{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;max-width:100%}
.shufflenet-result table{border-collapse:collapse;margin:.4em 0 1em;font-variant-numeric:tabular-nums}
.shufflenet-result th,.shufflenet-result td{border:1px solid #d0d7de;padding:.2em .55em;text-align:left}
.shufflenet-result td.num{text-align:right}.shufflenet-result th{background:#f3f5f7}
.shufflenet-result .table-wrap{overflow-x:auto}.shufflenet-result figure{margin:.5em 0 1.2em}
.shufflenet-result img{max-width:100%;height:auto}.shufflenet-result .note{color:#57606a;font-size:.92em}
.shufflenet-result .table-title{font-weight:600;margin:.8em 0 .2em}"""


def format_for_path(path: str | os.PathLike[str] | None, fmt: str | None = None) -> str:
    """The format to write: ``fmt`` when given, else inferred from ``path``'s extension (``table`` when
    there is none or it is unknown). A contradiction (``fmt="csv"`` with ``x.json``) is bad input; a plain
    text extension (``.txt``) holds any format."""
    if fmt is not None and fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    inferred = EXTENSIONS.get(Path(path).suffix.lower()) if path is not None else None
    if fmt is None:
        return inferred or "table"
    # .txt and friends are plain text whatever they hold; .json, .csv, .md and .html name one format
    if inferred is not None and inferred != "table" and inferred != fmt:
        raise UserInputError(f"--format {fmt} contradicts the extension of {os.fspath(path)!r} "
                             f"(a {inferred} file): drop --format or rename the file")
    return fmt


def render(result: Result, fmt: str = "table", *, table: str | None = None, figures: bool = True) -> str:
    """``result`` in ``fmt``; ``table`` names the table CSV writes (its key or title)."""
    if fmt == "json":
        return to_json(result.to_dict())
    if fmt == "csv":
        return table_to_csv(_pick(result.tables(), table))
    if fmt == "table":
        return _text(result)
    if fmt == "md":
        return _markdown(result, figure_links=None)
    if fmt == "html":
        return _html_fragment(result, figures=figures)
    raise UserInputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def write_result(result: Result, path: str | os.PathLike[str], *, fmt: str | None = None,
                 environment: Mapping[str, Any] | None = None, table: str | None = None) -> Path:
    """Write ``result`` to ``path`` atomically, in the format its extension names (or ``fmt``).

    The environment (CPU/GPU, threads, versions; :func:`shufflenet.environment.capture_environment` when
    not given) goes into JSON as ``"environment"`` (unless the result carries its own), and under the
    tables in Markdown and HTML. Markdown's figures are written beside it as ``STEM_KEY.png``; HTML embeds
    them. Returns the path written.
    """
    path = Path(path)
    fmt = format_for_path(path, fmt)
    d = result.to_dict()
    if environment is None:  # the result's own (the threads it measured with), else this process's
        own = d.get("environment") or d.get("env")
        if isinstance(own, Mapping):
            environment = own
        else:
            from shufflenet.environment import capture_environment

            environment = capture_environment()
    env = dict(environment)
    if fmt == "json":
        if "environment" not in d and "env" not in d:
            d = {**d, "environment": env}
        return write_atomic(path, to_json(d) + "\n")
    if fmt == "csv":
        return write_atomic(path, table_to_csv(_pick(result.tables(), table)))
    if fmt == "table":
        return write_atomic(path, _text(result) + "\n")
    if fmt == "md":
        links: dict[str, str] = {}
        for i, fig in enumerate(result.figures()):
            try:
                png = fig.png()
            except FigureUnavailable:
                continue
            name = f"{path.stem}_{_slug(fig.key)}.png"
            if name in links.values():  # two keys that slug alike must not overwrite each other
                name = f"{path.stem}_{_slug(fig.key)}-{i}.png"
            write_atomic(path.with_name(name), png)
            links[fig.key] = name
        text = _markdown(result, figure_links=links) + "\n" + _md_environment(env)
        return write_atomic(path, text)
    page = html_document(_html_fragment(result, environment=env), title=_first_title(result))
    return write_atomic(path, page)


# --- text ---------------------------------------------------------------------------------------


def format_cell(value: Any, col: Column | None = None) -> str:
    """One cell as text: ``-`` for missing, the column's format, else integers as-is, floats to 2 dp."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    spec = col.fmt if col is not None else None
    if isinstance(value, (int, float)):
        if spec == "si":
            return si(value)
        if spec:
            try:
                return format(value, spec)
            except (ValueError, TypeError):
                return str(value)
        if isinstance(value, float):
            value += 0.0  # no "-0.00"
            return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.4g}"
        return str(value)
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def si(n: float, unit: str = "") -> str:
    """1234567 -> ``1.235M`` (decimal prefixes, three decimals)."""
    if isinstance(n, float) and not math.isfinite(n):
        return f"{n}{unit}"
    a = abs(n)
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if round(a / scale, 3) >= 1:  # 999999.7 is 1.000M, not 1000.000K
            return f"{n / scale:.3f}{prefix}{unit}"
    if isinstance(n, float):
        return f"{n:.3g}{unit}"
    return f"{n}{unit}"


def _numeric(col: Column, rows: Sequence[Mapping[str, Any]]) -> bool:
    vals = [r.get(col.key) for r in rows]
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in vals)


def table_to_text(t: Table) -> str:
    """One table, aligned, with its title above and notes below."""
    out = [t.title] if t.title else []
    if t.rows and t.columns:
        heads = [c.header for c in t.columns]
        cells = [[format_cell(r.get(c.key), c) for c in t.columns] for r in t.rows]
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
        numeric = [_numeric(c, t.rows) for c in t.columns]

        def line(vals: Sequence[str]) -> str:
            return "  ".join(v.rjust(w) if n else v.ljust(w)
                             for v, w, n in zip(vals, widths, numeric, strict=True)).rstrip()

        out += [line(heads), line(["-" * w for w in widths]), *(line(row) for row in cells)]
    elif not t.rows:
        out.append("(no rows)")
    out += [f"note: {n}" for n in t.notes]
    return "\n".join(out)


def _text(result: Result) -> str:
    parts = []
    conv = result.conventions()
    if conv:
        parts.append("\n".join(conv))
    parts += [table_to_text(t) for t in result.tables() if t.display]
    return "\n\n".join(parts)


def table_to_csv(t: Table) -> str:
    """Raw values, one header line of column keys (the names ``to_dict`` uses)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.column_keys())
    for r in t.rows:
        w.writerow([_csv_value(r.get(k)) for k in t.column_keys()])
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v))
    return v


def to_json(obj: Any) -> str:
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


def _pick(tables: Sequence[Table], name: str | None) -> Table:
    if not tables:
        return Table("", [], [])
    if name is None:
        return tables[0]
    for t in tables:
        if name in (t.key, t.title):
            return t
    known = ", ".join(t.key or t.title for t in tables)
    raise UserInputError(f"no table {name!r} in this result; it has: {known}")


def _first_title(result: Result) -> str:
    for t in result.tables():
        if t.title:
            return t.title
    return "shufflenet result"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text).strip("-") or "figure"


# --- Markdown -----------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_to_markdown(t: Table) -> str:
    out = [f"**{_md_escape(t.title)}**", ""] if t.title else []
    if t.rows and t.columns:
        numeric = [_numeric(c, t.rows) for c in t.columns]
        out.append("| " + " | ".join(_md_escape(c.header) for c in t.columns) + " |")
        out.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        for r in t.rows:
            out.append("| " + " | ".join(_md_escape(format_cell(r.get(c.key), c)) for c in t.columns) + " |")
    else:
        out.append("(no rows)")
    if t.notes:
        out.append("")
        out += [f"*{_md_escape(n)}*  " for n in t.notes]
    return "\n".join(out)


def _markdown(result: Result, figure_links: Mapping[str, str] | None) -> str:
    parts = []
    conv = result.conventions()
    if conv:
        parts.append("\n".join(f"- {_md_escape(c)}" for c in conv))
    parts += [table_to_markdown(t) for t in result.tables() if t.display]
    if figure_links is not None:
        for fig in result.figures():
            if fig.key in figure_links:
                parts.append(f"![{_md_escape(fig.title)}](<{figure_links[fig.key]}>)")  # <>: spaces, parens
            else:
                parts.append(f"*figure {_md_escape(fig.title)!r} not drawn: matplotlib is not installed*")
    return "\n\n".join(parts) + "\n"


def _md_environment(env: Mapping[str, Any]) -> str:
    items = [f"{k}: {format_cell(v)}" for k, v in env.items() if v is not None]
    return "*environment: " + _md_escape("; ".join(items)) + "*\n" if items else ""


# --- HTML ---------------------------------------------------------------------------------------


def table_to_html(t: Table) -> str:
    e = html.escape
    out = []
    if t.title:
        out.append('<p class="table-title">' + "<br>".join(e(line) for line in t.title.splitlines()) + "</p>")
    out.append('<div class="table-wrap"><table>')
    if t.columns:
        out.append("<thead><tr>" + "".join(f"<th>{e(c.header)}</th>" for c in t.columns) + "</tr></thead>")
    out.append("<tbody>")
    numeric = [_numeric(c, t.rows) for c in t.columns]
    for r in t.rows:
        tds = "".join(f'<td class="num">{e(format_cell(r.get(c.key), c))}</td>' if n
                      else f"<td>{e(format_cell(r.get(c.key), c))}</td>" for c, n in zip(t.columns, numeric, strict=True))
        out.append(f"<tr>{tds}</tr>")
    out.append("</tbody></table></div>")
    out += [f'<p class="note">{e(n)}</p>' for n in t.notes]
    return "\n".join(out)


def figure_to_html(fig: Figure) -> str:
    e = html.escape
    try:
        png = fig.png()
    except FigureUnavailable as exc:
        return f'<p class="note">{e(str(exc))}</p>'
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{e(fig.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(fig.title)}</figcaption></figure>")


def _html_fragment(result: Result, *, figures: bool = True, environment: Mapping[str, Any] | None = None) -> str:
    e = html.escape
    out = ['<section class="shufflenet-result">', f"<style>{RESULT_CSS}</style>"]
    conv = result.conventions()
    if conv:
        out.append('<ul class="note">' + "".join(f"<li>{e(c)}</li>" for c in conv) + "</ul>")
    out += [table_to_html(t) for t in result.tables() if t.display]
    if figures:
        out += [figure_to_html(f) for f in result.figures()]
    if environment:
        items = "; ".join(f"{k}: {format_cell(v)}" for k, v in environment.items() if v is not None)
        out.append(f'<p class="note">environment: {e(items)}</p>')
    out.append("</section>")
    return "\n".join(out) + "\n"


def html_document(body: str, title: str = "shufflenet") -> str:
    """A whole page around HTML fragments (UTF-8, responsive, no external resources)."""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title></head>\n<body>\n{body}</body></html>\n")
