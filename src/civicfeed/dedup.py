"""Deduplicate: which candidates are new, which update a stored entry, which stories merge.

Everything here is a pure function of its arguments: no clock, no I/O.

The rule, within one source (``plan_source``):

- Items with different guids are different stories, whatever their titles and dates; so are
  items with different links (a link shared by several items of one fetch, such as an
  overview page, tells nothing apart and counts as no link).
- A candidate is the stored entry with its guid, else the entry with its link, else, only
  where neither guid nor link tells them apart, the entry with the same title key on the same
  calendar day.
- An undated candidate is matched by guid or link; by title alone only when it has neither,
  and never onto an entry whose guid or link differs.

Across sources (``merge_stories``): entries of different sources are one story when their
title keys are equal and their dates are within the window (the later one falls on or before
the calendar day of the earlier one plus the window; a window of 0 is the same calendar day).
Entries of one source are never merged with each other, and a title that one source itself
uses twice or more within the window (a generic title such as "Öffentliche Bekanntmachung")
is ambiguous: those entries stay stories of their own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from operator import attrgetter
from typing import TypeVar

from .models import Candidate, Entry, made

__all__ = [
    "DEFAULT_WINDOW",
    "TITLE_KEY_RULES",
    "SourcePlan",
    "Story",
    "entry_id",
    "merge_stories",
    "plan_source",
    "story_key",
    "title_key",
    "within_window",
]

DEFAULT_WINDOW = 86400.0  # seconds: one day
K = TypeVar("K")

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
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): soft
# hyphen, zero-width space and joiners, bidi marks, variation selectors, fillers, tags.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# the same as translating by _DASHES and _QUOTES, searched in C (translate looks every
# character up in the table, ten times slower for text beyond ASCII)
_DASH = re.compile("[" + "".join(re.escape(chr(c)) for c in _DASHES) + "]")
_QUOTE = re.compile("[" + "".join(re.escape(chr(c)) for c in _QUOTES) + "]")
# every run of white space that is not already one plain space (the same as collapsing all
# runs to one space, without replacing each single space by another)
_SPACE = re.compile(r"[^\S ]\s*| \s+")
_SPACED_DASH = re.compile(r"\s*-\s*")
_TRAILING = ".!?:;…"


# the version of title_key's rules: a title key stored with another version is made again
# (see store.entry_heads). Raise it whenever title_key gives any title another key
# (tests/test_dedup.py pins the keys of sample titles to it).
TITLE_KEY_RULES = 1


def title_key(title: str) -> str:
    """A title reduced to what makes two headlines the same headline.

    Default-ignorable code points (soft hyphens, zero-width characters) removed, NFKC, case
    folding, every dash as '-', every quote as '"', white space collapsed (also around dashes,
    which editors space differently), trailing . ! ? : ; … removed.
    """
    if title.isascii():  # no ignorable code point, dash or curly quote; NFKC leaves it
        text = title.lower().replace("'", '"').replace("`", '"')
    else:
        text = unicodedata.normalize("NFKC", _IGNORABLE.sub("", title))
        text = unicodedata.normalize("NFKC", text.casefold())
        text = _QUOTE.sub('"', _DASH.sub("-", _IGNORABLE.sub("", text)))
    text = _SPACE.sub(" ", text)
    if "-" in text:
        text = _SPACED_DASH.sub(" - ", text)
    return text.strip().rstrip(_TRAILING + " ")


def story_key(published: datetime, title: str, zone: tzinfo) -> tuple[date, str]:
    return published.astimezone(zone).date(), title_key(title)


def within_window(first: datetime, second: datetime, window: float, zone: tzinfo) -> bool:
    """Whether the later date falls on or before the calendar day of the earlier plus window."""
    early, late = sorted((first, second))
    limit = (early + timedelta(seconds=window)).astimezone(zone).date()
    return late.astimezone(zone).date() <= limit


# --- one source: candidates against stored entries ----------------------------------------


@dataclass(frozen=True)
class SourcePlan:
    new: tuple[Entry, ...] = ()
    changed: tuple[Entry, ...] = ()
    unchanged: int = 0
    # the title key (title_key's) of new and changed entries by id, as planning made them,
    # so that the store does not make them again (an entry not in it gets its key there)
    keys: Mapping[str, str] = field(default_factory=dict)


_ENTRY_IDS = uuid.UUID("5c1e4b53-8f0e-4d1c-9a57-0c1f3e2d6b8a")
_NAMESPACE = _ENTRY_IDS.bytes


def entry_id(candidate: Candidate, taken: Container[str] = ()) -> str:
    """A new entry's id: a name-based UUID of its source and what the item says of itself
    (guid, link, title, date), so that every process that first sees an item names it alike;
    the next free one of ``1``, ``2``, ... is added when that id is ``taken``."""
    published = candidate.published.isoformat() if candidate.published else ""
    parts = [candidate.source_id, candidate.guid or "", candidate.link or "", candidate.title]
    name = "\n".join([*parts, published])
    entry = _uuid5(name)
    number = 0
    while entry in taken:
        number += 1
        entry = _uuid5(name + chr(10) + str(number))
    return entry


def _uuid5(name: str) -> str:
    """``f"urn:uuid:{uuid.uuid5(_ENTRY_IDS, name)}"``, the same text (RFC 4122 version 5:
    SHA-1 of the namespace and the name, its version and variant bits set), made from the
    digest's bytes without a UUID object and its 128-bit integer (a third of the time of
    planning a new source's entries)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant: RFC 4122
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def plan_source(
    existing: Sequence[Entry],
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    zone: tzinfo,
    new_id: Callable[[], str] | None = None,
) -> SourcePlan:
    """Match a fetch's candidates to the source's stored entries (the rule: module doc).

    A match with different content is an update; the entry keeps its id. Two candidates of
    one fetch that are one story by the rule count once (the first). A new entry's id is
    ``entry_id``'s (``new_id``, when given, numbers them instead).
    """
    taken = {entry.id for entry in existing}
    repeated_links = _repeated(c.link for c in candidates if c.link)
    index = _Index(existing, zone, repeated_links)
    claimed: set[str] = set()
    new: list[Entry] = []
    changed: list[Entry] = []
    unchanged = 0
    for candidate in candidates:
        match = index.find(candidate)
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
        entry = _create(candidate, now, new_id() if new_id else entry_id(candidate, taken))
        taken.add(entry.id)
        claimed.add(entry.id)
        new.append(entry)
        index.add(entry)
    keys = {entry.id: index.title_key(entry.title) for entry in (*new, *changed)}
    return SourcePlan(tuple(new), tuple(changed), unchanged, keys)


class _Index:
    def __init__(self, entries: Iterable[Entry], zone: tzinfo, shared_links: set[str]) -> None:
        self.zone = zone
        self.shared_links = shared_links  # links several candidates share: not identities
        self.by_guid: dict[str, Entry] = {}
        self.by_link: dict[str, list[Entry]] = {}
        self.by_key: dict[tuple[date, str], list[Entry]] = {}
        self.by_title: dict[str, list[Entry]] = {}
        self.title_keys: dict[str, str] = {}  # each title's key, reduced once
        for entry in sorted(entries, key=lambda e: (e.first_seen, e.id)):
            self.add(entry)

    def add(self, entry: Entry) -> None:
        if entry.guid:
            self.by_guid.setdefault(entry.guid, entry)
        if entry.link:
            self._put(self.by_link, entry.link, entry)
        key = self.title_key(entry.title)
        self._put(self.by_key, (entry.published.astimezone(self.zone).date(), key), entry)
        self._put(self.by_title, key, entry)

    def title_key(self, title: str) -> str:
        """title_key, once per title: an entry made from a candidate has the title looked up
        for it, and an unchanged story has the same title as its entry."""
        key = self.title_keys.get(title)
        if key is None:
            key = self.title_keys[title] = title_key(title)
        return key

    @staticmethod
    def _put(index: dict[K, list[Entry]], key: K, entry: Entry) -> None:
        bucket = index.get(key)
        if bucket is None:  # the usual case: a key of its own
            index[key] = [entry]
        else:
            bucket[:] = [e for e in bucket if e.id != entry.id] + [entry]

    def _link(self, link: str | None) -> str | None:
        """The link as an identity: None when several items of the fetch share it, or when
        several stored entries do (an overview page every item pointed to)."""
        if not link or link in self.shared_links or len(self.by_link.get(link, ())) > 1:
            return None
        return link

    def find(self, candidate: Candidate) -> Entry | None:
        if candidate.guid and candidate.guid in self.by_guid:
            return self.by_guid[candidate.guid]
        link = self._link(candidate.link)
        if link and link in self.by_link:
            (entry,) = self.by_link[link]
            if not _differ(candidate.guid, entry.guid):
                return entry
        if candidate.published is None:
            if candidate.guid or link:
                return None  # an undated item with an identity is matched by it only
            same = self.by_title.get(self.title_key(candidate.title), ())
            latest = [e for e in same if self.alike(candidate, e)]
            return max(latest, key=lambda e: (e.published, e.first_seen), default=None)
        key = (candidate.published.astimezone(self.zone).date(), self.title_key(candidate.title))
        return next((e for e in self.by_key.get(key, ()) if self.alike(candidate, e)), None)

    def alike(self, candidate: Candidate, entry: Entry) -> bool:
        """Neither guid nor link tells the two apart."""
        if _differ(candidate.guid, entry.guid):
            return False
        return not _differ(candidate.link, entry.link)


def _differ(one: str | None, other: str | None) -> bool:
    return bool(one) and bool(other) and one != other


def _repeated(values: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        (repeated if value in seen else seen).add(value)
    return repeated


def _create(candidate: Candidate, now: datetime, entry_id: str) -> Entry:
    """The new entry of a candidate, made as pickle rebuilds one: its fields set at once in
    their order, without the checks of the frozen __init__ (half the time of making it;
    a new source's planning makes one per item)."""
    return made(
        Entry,
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
        content=candidate.content or "",
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
        content=candidate.content or entry.content,
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


# the order of merge_stories' stories (reversed): read in C, for every story of an aggregate
_NEWEST = attrgetter("entry.published", "entry.first_seen", "id")


def merge_stories(
    entries: Iterable[Entry],
    order: Sequence[str],
    zone: tzinfo,
    window: float = DEFAULT_WINDOW,
    keys: Mapping[str, str] | None = None,
) -> list[Story]:
    """Group entries into stories, newest first (the rule: module doc).

    ``order``: source ids by priority; ``window``: seconds (0: the same calendar day);
    ``keys``: the title keys of (some of) the entries by id, as title_key gives them (kept
    in the store), so that they are not made again.
    """
    rank = {source_id: position for position, source_id in enumerate(order)}
    by_title: dict[str, list[Entry]] = {}
    known = keys or {}
    for entry in entries:
        key = known.get(entry.id)
        by_title.setdefault(title_key(entry.title) if key is None else key, []).append(entry)
    groups: list[list[Entry]] = []
    stories = []
    for same_title in by_title.values():
        if len(same_title) == 1:  # the usual case: a story of one copy
            (entry,) = same_title
            stories.append(Story(entry.id, entry, (), entry.updated))
            continue
        same_title.sort(key=lambda e: (e.published, e.first_seen, e.id))
        ambiguous = _ambiguous(same_title, window, zone)
        open_groups: list[list[Entry]] = []
        for entry in same_title:
            if entry.id in ambiguous:
                groups.append([entry])
                continue
            home = next(
                (
                    group
                    for group in open_groups
                    if all(e.source_id != entry.source_id for e in group)
                    and within_window(group[0].published, entry.published, window, zone)
                ),
                None,
            )
            if home is None:
                home = []
                open_groups.append(home)
            home.append(entry)
        groups.extend(open_groups)
    for group in groups:
        if len(group) == 1:
            (entry,) = group
            stories.append(Story(entry.id, entry, (), entry.updated))
            continue
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
    stories.sort(key=_NEWEST, reverse=True)
    return stories


def _ambiguous(same_title: Sequence[Entry], window: float, zone: tzinfo) -> set[str]:
    """Ids of entries whose own source has another entry of this title within the window."""
    found: set[str] = set()
    for position, entry in enumerate(same_title):
        for other in same_title[position + 1 :]:  # sorted by date: stop past the window
            if not within_window(entry.published, other.published, window, zone):
                break
            if other.source_id == entry.source_id:
                found.update((entry.id, other.id))
    return found
