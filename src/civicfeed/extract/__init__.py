"""Extract: fetched bytes -> items. HTML listings by CSS selectors, feeds by feedparser."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import Extraction, Fetched
from .feed import extract_feed
from .html import extract_html

if TYPE_CHECKING:
    from ..config import Source

__all__ = ["extract"]


def extract(fetched: Fetched, source: Source) -> Extraction:
    """Items of one fetched document, by the source's kind; ExtractError if there are none."""
    if source.html is not None:
        return extract_html(fetched, source.html)
    return extract_feed(fetched)
