"""Normalise: an extracted Item -> a Candidate (clean title, absolute link, aware date)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from ..models import Candidate, Item
from ..xmlsafe import scrub
from .dates import mentions_date, parse_date, plausible, read_date
from .text import MAX_TITLE, absolute_link, clean_text, sanitise_html

__all__ = ["choose_date", "normalise", "parse_date"]


def normalise(
    item: Item, *, source_id: str, base_url: str, zone: tzinfo, date_order: str = "dmy"
) -> tuple[Candidate | None, list[str]]:
    """The item as a candidate entry, or None when nothing usable is left; plus warnings."""
    warnings: list[str] = []
    title, cut = clean_text(item.title)
    if not title:
        return None, ["an item with an empty title was skipped"]
    if cut:
        warnings.append(f"title longer than {MAX_TITLE} characters was shortened: {title[:60]}")
    link = absolute_link(item.link, base_url)
    if item.link and link is None:
        warnings.append(f"{title[:60]}: link {item.link[:80]!r} is not a usable http(s) URL")
    # an item without a readable date is reported by the caller, which may still find one
    published = choose_date(item.date_text, item.date_hint, zone, date_order)
    if published is not None and not plausible(published):
        published = None  # year 1 or 9999: unknown, reported by the caller like any other
    summary, cut = sanitise_html(item.summary_html, base_url)
    if cut:
        warnings.append(f"{title[:60]}: summary was shortened")
    guid, _ = clean_text(item.guid, limit=2000) if item.guid else (None, False)
    # the sanitiser decodes character references (&#x0B;, &#27;, &#xFFFE;) into characters
    # that XML cannot carry: every string of a candidate is made XML-safe as a whole, last
    candidate = Candidate(
        source_id=source_id,
        title=title,
        link=link,
        published=published,
        summary=summary,
        guid=guid or None,
    )
    return scrub(candidate), warnings


def choose_date(
    text: str | None, parsed: datetime | None, zone: tzinfo, order: str = "dmy"
) -> datetime | None:
    """The most reliable reading of an item's date: ``parsed`` is the feed library's.

    The feed library knows RFC 822 and ISO 8601 zones and offsets: its reading wins, except
    where it took the clock time of the text as UTC (a time without zone or offset, which is
    local time in ``zone``; an offset it ignored, such as "+0010" in ISO 8601), a date in
    numbers only (it guesses at the order of day and month; here ``order`` decides), and a
    date written like one but impossible (it rolls 31 February over to 2 March).
    """
    own = read_date(text, zone, order)
    if parsed is None:
        return own.value if own else None
    if own is None:
        return None if mentions_date(text) else parsed
    if own.numeric:
        return own.value
    if own.value.replace(tzinfo=UTC) == parsed:
        return own.value
    return parsed
