"""Normalise: an extracted Item -> a Candidate (clean title, absolute link, aware date)."""

from __future__ import annotations

from datetime import datetime, tzinfo

from ..models import Candidate, Extraction, Item, Normalised, made
from ..xmlsafe import scrub, strip_controls
from .dates import mentions_date, parse_date, plausible, read_date
from .text import MAX_TITLE, absolute_link, clean_text, derive_title, sanitise_html

__all__ = ["choose_date", "normalise", "normalise_all", "parse_date"]


def normalise(
    item: Item, *, source_id: str, base_url: str, zone: tzinfo, date_order: str = "dmy"
) -> tuple[Candidate | None, list[str]]:
    """The item as a candidate entry, or None when nothing usable is left; plus warnings."""
    warnings: list[str] = []
    title, cut = clean_text(item.title)
    if not title:
        title = derive_title(item.summary_html, absolute_link(item.link, base_url))
        if not title:
            return None, ["an item without title, summary and link was skipped"]
        warnings.append(f"an item without a title was titled from its summary or link: {title}")
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
    candidate = made(  # one per item: without the frozen __init__'s checks
        Candidate,
        source_id=source_id,
        title=title,
        link=link,
        published=published,
        summary=summary,
        guid=guid or None,
        content=None,
    )
    # its strings searched at once, as scrub searches them: a candidate with nothing to
    # remove (the usual one) is returned as it is, without scrub's walk and its mark
    texts = "".join(text for text in (source_id, title, link, summary, guid) if text)
    if len(strip_controls(texts)) == len(texts):
        return candidate, warnings
    return scrub(candidate), warnings


def normalise_all(
    extraction: Extraction, *, source_id: str, base_url: str, zone: tzinfo, date_order: str = "dmy"
) -> Normalised:
    """Every item of an extraction normalised; an item that cannot be handled is left out
    with a warning and never fails its siblings."""
    warnings = list(extraction.warnings)
    candidates: list[Candidate] = []
    date_texts: list[str | None] = []
    for item in extraction.items:
        try:
            candidate, notes = normalise(
                item, source_id=source_id, base_url=base_url, zone=zone, date_order=date_order
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            warnings.append(f"{_name(item)}: skipped, it could not be read ({reason})")
            continue
        warnings.extend(notes)
        if candidate is not None:
            candidates.append(candidate)
            date_texts.append(item.date_text)
    return Normalised(
        tuple(candidates),
        tuple(date_texts),
        tuple(warnings),
        len(extraction.items),
        extraction.title,
        extraction.language,
    )


def _name(item: Item) -> str:
    return repr(item.title[:60]) if isinstance(item.title, str) and item.title else "an item"


def choose_date(
    text: str | None, parsed: datetime | None, zone: tzinfo, order: str = "dmy"
) -> datetime | None:
    """The most reliable reading of an item's date: ``parsed`` is the feed library's.

    The own parser's reading wins where it understood every part of the text (a date and
    nothing else): it reads a time without zone or offset as local time in ``zone`` (the feed
    library takes UTC), knows "PM" and ISO 8601 offsets without a colon (which the feed
    library ignores), and reads numeric dates in ``order`` (where the feed library guesses).
    Otherwise the feed library's reading wins, as it knows more zones and forms; a text
    written like a date but impossible (31 February, which the library rolls over to
    2 March) has none.
    """
    own = read_date(text, zone, order)
    if own is not None and own.whole:
        return own.value
    if parsed is None:
        return own.value if own else None
    if own is None and mentions_date(text):
        return None
    return parsed
