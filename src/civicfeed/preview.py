"""What ``check`` and ``add`` show of a source: its selectors, its items, its warnings.

Lines for an 80-column terminal, or plain data for ``--json``. Pure functions of an
Inspection.
"""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, tzinfo
from typing import Any

import lxml.html

from .models import Pinned
from .refresh import Inspection

__all__ = ["as_data", "as_lines"]

WIDTH = 80
_DATE_WIDTH = 16  # "2026-02-11 14:30"
_INDENT = "     "


def as_lines(inspection: Inspection, zone: tzinfo, *, width: int = WIDTH) -> list[str]:
    what = "HTML listing" if inspection.kind == "html" else "feed"
    lines = [_cut(f"{inspection.source_id}: {what} {inspection.url}", width)]
    listing = inspection.listing
    if listing is not None:
        if listing.detected:
            lines.append(
                "selectors (detected; to pin them, copy them under html: in sources.yaml):"
            )
        else:
            lines.append("selectors (configured):")
        lines.extend(_selector_lines(listing.selectors, width))
        if not listing.selectors:
            lines.append("  (none: detection finds no listing on the page)")
        for note in listing.notes:
            lines.extend(_wrap(f"  note: {note}", width))
        if listing.suggestion is not None:
            lines.append(
                f"the item selector matches nothing; detection would now pick "
                f"{listing.suggestion.items} items with:"
            )
            lines.extend(_selector_lines(listing.suggestion.selectors, width))
            if not listing.suggestion.exact:
                lines.append("  (these do not read exactly what detection reads)")
        elif (
            listing.detected is False
            and inspection.error
            and "matched nothing" in (inspection.error)
        ):
            lines.append("the item selector matches nothing, and detection finds no listing")
    if inspection.error:
        lines.extend(_wrap(f"failed: {inspection.error}", width))
        return lines
    count = len(inspection.candidates)
    lines.append(f"{count} item{'s' if count != 1 else ''}:")
    if count:
        lines.append(_cut(f"  #  {'date':<{_DATE_WIDTH}}  title / link / summary", width))
    for number, candidate in enumerate(inspection.candidates, start=1):
        when = _when(candidate.published, zone) if candidate.published else "(no date)"
        lines.append(_cut(f"{number:>3}  {when:<{_DATE_WIDTH}}  {candidate.title}", width))
        lines.append(_INDENT + (candidate.link or "(no link)"))  # whole: it is to be copied
        teaser = _text(candidate.summary)
        if teaser:
            lines.append(_cut(_INDENT + teaser, width))
        if candidate.content:
            lines.append(f"{_INDENT}full text: {len(_text(candidate.content).split())} words")
    for warning in inspection.warnings:
        lines.extend(_wrap(f"warning: {warning}", width))
    return lines


def as_data(inspection: Inspection) -> dict[str, Any]:
    listing = inspection.listing
    return {
        "source": inspection.source_id,
        "url": inspection.url,
        "kind": inspection.kind,
        "selectors": dict(listing.selectors) if listing else None,
        "detected": listing.detected if listing else None,
        "suggestion": _suggestion(listing.suggestion) if listing else None,
        "notes": list(listing.notes) if listing else [],
        "error": inspection.error,
        "items": [
            {
                "date": c.published.isoformat() if c.published else None,
                "title": c.title,
                "link": c.link,
                "summary": c.summary,
                "content": c.content,
            }
            for c in inspection.candidates
        ],
        "warnings": list(inspection.warnings),
    }


def _suggestion(pinned: Pinned | None) -> dict[str, Any] | None:
    if pinned is None:
        return None
    return {"selectors": dict(pinned.selectors), "items": pinned.items, "exact": pinned.exact}


def _selector_lines(selectors: tuple[tuple[str, str], ...], width: int) -> list[str]:
    return [_cut(f"  {key + ':':<14}{value}", width) for key, value in selectors]


def _when(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M")


def _text(summary: str) -> str:
    if not summary.strip():
        return ""
    try:
        text = lxml.html.fragment_fromstring(summary, create_parent="div").text_content()
    except (lxml.etree.ParserError, ValueError):
        text = re.sub(r"<[^>]+>", " ", summary)
    return " ".join(text.split())


def _wrap(text: str, width: int) -> list[str]:
    """A message over as many lines as it needs, continued with an indent."""
    return textwrap.wrap(
        text, width, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    ) or [""]


def _cut(line: str, width: int) -> str:
    """The line, shortened at a word to ``width`` characters with an ellipsis."""
    if len(line) <= width:
        return line
    head = line[: width - 1]
    space = head.rfind(" ")
    if space > width * 2 // 3:
        head = head[:space]
    return head.rstrip() + "…"
