"""How records are written as text and JSON: one rule for every backend (timestamps in UTC
with microseconds; an archive page's stories as JSON)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from ..dedup import Story
from ..models import Entry, FeedTotals
from ..xmlsafe import strip_controls

__all__ = [
    "dt",
    "entry_from",
    "entry_json",
    "iso",
    "story_from",
    "story_json",
    "totals_row",
    "xml_safe",
]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def xml_safe(value: str | None) -> str | None:
    return strip_controls(value) if isinstance(value, str) else value


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        f.name: iso(value) if isinstance(value, datetime) else value
        for f in dataclasses.fields(entry)
        for value in [getattr(entry, f.name)]
    }


def entry_from(raw: dict[str, Any]) -> Entry:
    known = {f.name: str(f.type) for f in dataclasses.fields(Entry)}
    values: dict[str, Any] = {
        name: datetime.fromisoformat(value)
        if isinstance(value, str) and known[name].startswith("datetime")
        else value
        for name, value in raw.items()
        if name in known
    }
    return Entry(**values)


def story_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.id,
        "entry": entry_json(story.entry),
        "origins": [entry_json(copy) for copy in story.origins],
        "updated": iso(story.updated),
    }


def story_from(raw: dict[str, Any]) -> Story:
    return Story(
        id=raw["id"],
        entry=entry_from(raw["entry"]),
        origins=tuple(entry_from(copy) for copy in raw["origins"]),
        updated=datetime.fromisoformat(raw["updated"]),
    )


def totals_row(totals: FeedTotals) -> tuple[str, int, str, str | None]:
    """A feed's totals as the row of ``feed_summaries``."""
    newest = None if totals.newest is None else json.dumps(entry_json(totals.newest))
    return totals.feed_id, totals.count, iso(totals.updated), newest
