"""Extract: fetched bytes -> items. HTML listings by CSS selectors, feeds by feedparser."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..models import Extraction, Fetched
from . import detect
from .article import read_article
from .feed import extract_feed
from .html import extract_html, parse_page, text_of

if TYPE_CHECKING:
    from ..config import Source

__all__ = ["MAX_ITEMS", "detail_text", "extract", "read_detail"]


# More items than any listing or feed shows: a page with more is broken or hostile, and the
# surplus is left out rather than stored.
MAX_ITEMS = 1000


def extract(fetched: Fetched, source: Source) -> Extraction:
    """Items of one fetched document, by the source's kind; ExtractError if there are none."""
    if source.html is not None:
        extraction = extract_html(fetched, source.html, source.date_order, MAX_ITEMS)
    else:
        extraction = extract_feed(fetched, MAX_ITEMS)
    if len(extraction.items) <= MAX_ITEMS:
        return extraction
    note = f"{len(extraction.items)} items on one page; only the first {MAX_ITEMS} are read"
    return replace(
        extraction, items=extraction.items[:MAX_ITEMS], warnings=(*extraction.warnings, note)
    )


def detail_text(fetched: Fetched, selector: str) -> str | None:
    """The text of a detail page where its date stands: ``selector``, or "auto"."""
    root, _ = parse_page(fetched)
    return detect.detail_date_text(root) if selector == "auto" else text_of(root, selector)


def read_detail(
    fetched: Fetched, date_selector: str | None, content_selector: str | None, follow: bool
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """A detail page: (its date text, its article's HTML, warnings). The article is read
    when ``follow``; the date from ``date_selector`` (or "auto") when given, else from the
    article reader."""
    date_text: str | None = None
    article: str | None = None
    notes: tuple[str, ...] = ()
    if follow:
        found = read_article(fetched, selector=content_selector)
        date_text, article, notes = found.date_text, found.html, tuple(found.warnings)
    if date_selector:
        date_text = detail_text(fetched, date_selector)
    return date_text, article, notes
