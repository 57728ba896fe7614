"""Builders of store records for the store tests: one home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civicfeed.models import Entry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_entry(
    eid: str,
    source: str = "a",
    *,
    guid: str | None = None,
    link: str | None = None,
    title: str = "Titel",
    content: str = "",
    minutes: int = 0,
    published: datetime | None = None,
    seen: datetime | None = None,
    summary: str = "<p>Zusammenfassung</p>",
) -> Entry:
    """An entry of ``source`` published ``minutes`` after NOW (or at ``published``), first
    seen and updated then (or at ``seen``). The one builder of entries for every test."""
    at = published or NOW + timedelta(minutes=minutes)
    return Entry(
        id=eid,
        source_id=source,
        title=title,
        link=link,
        published=at,
        date_known=True,
        summary=summary,
        first_seen=seen or at,
        updated=seen or at,
        guid=guid,
        content=content,
    )
