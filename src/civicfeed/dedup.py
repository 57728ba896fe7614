"""Deduplicate: which candidates are new, which update a stored entry, which stories merge.

Everything here is a pure function of its arguments: no clock, no I/O.
Two items are the same story when they fall on the same calendar day in the configured zone
and their titles have the same key (see ``title_key``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo

from .models import Candidate, Entry

__all__ = ["SourcePlan", "Story", "merge_stories", "plan_source", "story_key", "title_key"]

_DASHES = dict.fromkeys(
    map(
        ord,
        "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58"
        "\ufe63\uff0d\u058a\u05be\u2e3a\u2e3b",
    ),
    "-",
)
_QUOTES = dict.fromkeys(
    map(
        ord,
        "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u2033"
        "\u301d\u301e\u301f\uff02'\u2018\u2019\u201a\u201b`\u00b4"
        "\u2032",
    ),
    '"',
)
_SPACE = re.compile(r"\s+")
_SPACED_DASH = re.compile(r"\s*-\s*")
_TRAILING = ".!?:;…"


def title_key(title: str) -> str:
    """A title reduced to what makes two headlines the same headline.

    NFKC, case folding, every dash as '-', every quote as '"', white space collapsed (also
    around dashes, which editors space differently), trailing . ! ? : ; … removed.
    """
    text = unicodedata.normalize("NFKC", title)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = text.translate(_DASHES).translate(_QUOTES)
    text = _SPACE.sub(" ", text)
    text = _SPACED_DASH.sub(" - ", text).strip()
    while text and text[-1] in _TRAILING + " ":
        text = text[:-1]
    return text


def story_key(published: datetime, title: str, zone: tzinfo) -> tuple[date, str]:
    return published.astimezone(zone).date(), title_key(title)


# --- one source: candidates against stored entries ----------------------------------------


@dataclass(frozen=True)
class SourcePlan:
    new: tuple[Entry, ...] = ()
    changed: tuple[Entry, ...] = ()
    unchanged: int = 0


def new_entry_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def plan_source(
    existing: Sequence[Entry],
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    zone: tzinfo,
    new_id: Callable[[], str] = new_entry_id,
) -> SourcePlan:
    """Match a fetch's candidates to the source's stored entries.

    A candidate is matched by the origin's guid, then by its link (when the link is unique on
    the page and among stored entries), then by its story key; an undated candidate by link or
    title alone. A match with different content is an update; the entry keeps its id.
    """
    index = _Index(existing, zone)
    repeated_links = _repeated(c.link for c in candidates if c.link)
    claimed: set[str] = set()
    new: list[Entry] = []
    changed: list[Entry] = []
    unchanged = 0
    for candidate in candidates:
        usable_link = candidate.link if candidate.link not in repeated_links else None
        match = index.find(candidate, usable_link)
        if match is not None:
            if match.id in claimed:
                continue  # the same story twice in one fetch: the first one counts
            claimed.add(match.id)
            merged = _merge(match, candidate, now)
            if merged == match:
                unchanged += 1
            else:
                changed.append(merged)
                index.add(merged)
            continue
        entry = _create(candidate, now, new_id())
        claimed.add(entry.id)
        new.append(entry)
        index.add(entry)
    return SourcePlan(tuple(new), tuple(changed), unchanged)


class _Index:
    def __init__(self, entries: Iterable[Entry], zone: tzinfo) -> None:
        self.zone = zone
        self.by_guid: dict[str, Entry] = {}
        self.by_link: dict[str, list[Entry]] = {}
        self.by_key: dict[tuple[date, str], Entry] = {}
        self.by_title: dict[str, Entry] = {}
        for entry in sorted(entries, key=lambda e: (e.first_seen, e.id)):
            self.add(entry)

    def add(self, entry: Entry) -> None:
        if entry.guid:
            self.by_guid.setdefault(entry.guid, entry)
        if entry.link:
            bucket = self.by_link.setdefault(entry.link, [])
            bucket[:] = [e for e in bucket if e.id != entry.id] + [entry]
        self.by_key.setdefault(story_key(entry.published, entry.title, self.zone), entry)
        key = title_key(entry.title)
        latest = self.by_title.get(key)
        if latest is None or latest.published <= entry.published:
            self.by_title[key] = entry

    def find(self, candidate: Candidate, link: str | None) -> Entry | None:
        if candidate.guid and candidate.guid in self.by_guid:
            return self.by_guid[candidate.guid]
        if link and len(self.by_link.get(link, ())) == 1:
            return self.by_link[link][0]
        if candidate.published is None:
            return self.by_title.get(title_key(candidate.title))
        return self.by_key.get(story_key(candidate.published, candidate.title, self.zone))


def _repeated(values: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        (repeated if value in seen else seen).add(value)
    return repeated


def _create(candidate: Candidate, now: datetime, entry_id: str) -> Entry:
    return Entry(
        id=entry_id,
        source_id=candidate.source_id,
        title=candidate.title,
        link=candidate.link,
        published=candidate.published or now,
        date_known=candidate.published is not None,
        summary=candidate.summary,
        first_seen=now,
        updated=now,
        guid=candidate.guid,
    )


def _merge(entry: Entry, candidate: Candidate, now: datetime) -> Entry:
    merged = replace(
        entry,
        title=candidate.title,
        link=candidate.link or entry.link,
        summary=candidate.summary or entry.summary,
        published=candidate.published or entry.published,
        date_known=entry.date_known or candidate.published is not None,
        guid=entry.guid or candidate.guid,
    )
    return merged if merged == entry else replace(merged, updated=now)


# --- several sources: one story per key ---------------------------------------------------


@dataclass(frozen=True)
class Story:
    """One story in a feed: the entry shown and the other sources' copies of it."""

    id: str  # the id of the copy seen first: stable, whichever source is shown
    entry: Entry  # the copy from the source listed first
    origins: tuple[Entry, ...]  # the other copies, in source order
    updated: datetime  # the newest change among all copies

    @property
    def published(self) -> datetime:
        return self.entry.published


def merge_stories(entries: Iterable[Entry], order: Sequence[str], zone: tzinfo) -> list[Story]:
    """Group entries into stories, newest first. ``order``: source ids by priority."""
    rank = {source_id: position for position, source_id in enumerate(order)}
    groups: dict[tuple[date, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault(story_key(entry.published, entry.title, zone), []).append(entry)
    stories = []
    for group in groups.values():
        group.sort(key=lambda e: (rank.get(e.source_id, len(rank)), e.first_seen, e.id))
        eldest = min(group, key=lambda e: (e.first_seen, rank.get(e.source_id, len(rank)), e.id))
        stories.append(
            Story(
                id=eldest.id,
                entry=group[0],
                origins=tuple(group[1:]),
                updated=max(e.updated for e in group),
            )
        )
    stories.sort(key=lambda s: (s.published, s.entry.first_seen, s.id), reverse=True)
    return stories
