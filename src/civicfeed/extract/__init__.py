"""Extract: fetched bytes -> items. HTML listings by CSS selectors, feeds by feedparser."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..models import Extraction, Fetched
from .feed import extract_feed
from .html import extract_html

if TYPE_CHECKING:
    from ..config import Source

__all__ = ["MAX_ITEMS", "extract"]


# More items than any listing or feed shows: a page with more is broken or hostile, and the
# surplus is left out rather than stored.
MAX_ITEMS = 1000


def extract(fetched: Fetched, source: Source) -> Extraction:
    """Items of one fetched document, by the source's kind; ExtractError if there are none."""
    if source.html is not None:
        extraction = extract_html(fetched, source.html, source.date_order)
    else:
        extraction = extract_feed(fetched, MAX_ITEMS)
    if len(extraction.items) <= MAX_ITEMS:
        return extraction
    note = f"{len(extraction.items)} items on one page; only the first {MAX_ITEMS} are read"
    return replace(
        extraction, items=extraction.items[:MAX_ITEMS], warnings=(*extraction.warnings, note)
    )
