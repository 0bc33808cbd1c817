"""Looking up registered report sections: all of them in page order, one by key (with "did you mean"),
and the ones a ``--sections`` list selects. Importing this module loads the built-in sections."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import shufflenet.report.sections  # noqa: F401  (registers the built-in sections)
from shufflenet.errors import UserInputError
from shufflenet.report.registry import SECTIONS
from shufflenet.report.section import Section


def all_sections() -> list[Section]:
    """Every registered section, in the order they appear in the page."""
    return sorted(SECTIONS.values(), key=lambda s: s.order)


def section_keys() -> list[str]:
    return [s.key for s in all_sections()]


def get_section(key: str) -> Section:
    k = key.strip().lower()
    if k not in SECTIONS:
        near = difflib.get_close_matches(k, SECTIONS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise UserInputError(f"unknown report section {key!r}{hint} (sections: {', '.join(section_keys())})")
    return SECTIONS[k]


def select(keys: Sequence[str] | None) -> list[Section]:
    """The sections ``keys`` names (all when ``None``), each once, in page order; summary sections always
    come along ("At a glance" summarises whatever ran, "The machine" says where)."""
    if keys is None:
        return all_sections()
    chosen = {get_section(k).key for k in keys}
    if not chosen:
        raise UserInputError("--sections names no section")
    return [s for s in all_sections() if s.key in chosen or s.summary]
