"""The one place report sections register: ``SECTIONS`` (key -> :class:`Section`), in registration order.

The built-in sections (:mod:`shufflenet.report.sections`, one module each) call :func:`register` on
import; the audit, latency-model and deployment sections of later packages call it the same way. Looking
sections up (which first loads the built-in ones) is :mod:`shufflenet.report.selection`.
"""

from __future__ import annotations

from shufflenet.report.section import Section

SECTIONS: dict[str, Section] = {}


def register(section: Section, *, replace: bool = False) -> Section:
    """Add ``section`` (a second one under the same key is an error unless ``replace``)."""
    if section.key in SECTIONS and not replace:
        raise ValueError(f"a report section {section.key!r} is already registered")
    SECTIONS[section.key] = section
    return section


def unregister(key: str) -> None:
    SECTIONS.pop(key, None)
