"""How records are written as text and JSON: one rule for every backend (timestamps in UTC
with microseconds; an archive page's stories as JSON)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import marshal
import operator
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..dedup import TITLE_KEY_RULES, Story, title_key
from ..models import Entry, FeedTotals, made
from ..xmlsafe import strip_controls

__all__ = [
    "dt",
    "entry_digest",
    "entry_from",
    "entry_json",
    "entry_row",
    "iso",
    "page_from",
    "page_ids",
    "page_json",
    "stored_key",
    "story_from",
    "totals_row",
    "xml_safe",
]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def xml_safe(value: str | None) -> str | None:
    return strip_controls(value) if isinstance(value, str) else value


def entry_row(entry: Entry, times: Times | None = None) -> tuple[Any, ...]:
    """An entry as the row of ``entries`` without its digest (store.TABLES' order);
    ``times``: the text of each time written so far, kept for the next rows (the entries
    of one save share their first-seen and updated times)."""
    if times is None:
        times = {}
    return (
        entry.id,
        entry.source_id,
        entry.guid,
        entry.link,
        entry.title,
        _iso_of(entry.published, times),
        int(entry.date_known),
        entry.summary,
        _iso_of(entry.first_seen, times),
        _iso_of(entry.updated, times),
    )


# times by value and fold: two times of one zone that differ only by fold (the hour that is
# repeated when the clocks go back) are equal and hash alike, but are two instants
Times = dict[tuple[datetime, int], str]


def _iso_of(value: datetime, times: Times) -> str:
    key = (value, value.fold)
    text = times.get(key)
    if text is None:
        text = times[key] = iso(value)
    return text


# marshal's format 2: the same bytes for the same values (formats 3 and 4 mark objects
# referenced more than once, so that equal values held apart or shared differ)
_MARSHAL = 2


def stored_key(title: object, key: str | None = None) -> str | None:
    """The title key as it is stored: marked with the version of the rules it was made by
    (None for a title that is no text, which the database then refuses); ``key``: the title
    key, when the caller has made it already (``title_key(title)``)."""
    if not isinstance(title, str):
        return None
    return f"{TITLE_KEY_RULES}:{title_key(title) if key is None else key}"


def entry_digest(row: tuple[Any, ...], content: str | None) -> str:
    """The digest of an entry: every field of its row (``entry_row``, or the same columns as
    read back) and its article, so that two entries have the same digest only when all of
    them are the same. The times are the stored text (UTC, microseconds): one text per
    instant."""
    ident, source, guid, link, title, published, known, summary, seen, updated = row[:10]
    fields = (
        str(ident),
        str(source),
        guid,
        link,
        str(title),
        str(published),
        int(known),
        str(summary),
        str(seen),
        str(updated),
        content or "",
    )
    return hashlib.blake2b(marshal.dumps(fields, _MARSHAL), digest_size=16).hexdigest()


# Entry's fields, in their order, and those that hold a time (written as text): looked up
# once, not per entry (an aggregate's archive pages write and read 30,000 entries)
_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))
_ENTRY_TIMES = frozenset(
    f.name for f in dataclasses.fields(Entry) if str(f.type).startswith("datetime")
)
_ENTRY_NAMES = frozenset(_ENTRY_FIELDS)
_ENTRY_VALUES = operator.attrgetter(*_ENTRY_FIELDS)


# where the fields that hold a time are among Entry's values
_ENTRY_TIMES_AT = tuple(i for i, name in enumerate(_ENTRY_FIELDS) if name in _ENTRY_TIMES)


def entry_json(entry: Entry, times: Times | None = None) -> dict[str, Any]:
    """An entry as a JSON object: every field, in Entry's order, times as text (``iso``);
    ``times``: the text of each time written so far, kept for the next entries."""
    values = _entry_values(entry, {} if times is None else times)
    return dict(zip(_ENTRY_FIELDS, values, strict=True))


def entry_from(raw: dict[str, Any]) -> Entry:
    """The entry of an ``entry_json`` object (keys that are no field of Entry left out)."""
    values: dict[str, Any] = {
        name: datetime.fromisoformat(value)
        if name in _ENTRY_TIMES and isinstance(value, str)
        else value
        for name, value in raw.items()
        if name in _ENTRY_NAMES
    }
    return Entry(**values)


# An archive page's stories as stored: the ids of its stories in order first, so that they
# are read without decoding the rest (``page_ids``), then Entry's field names once, then each
# story as [entry, [copies...], updated] with every entry as the list of its values in that
# order, times as text (``iso``). A tenth smaller and a third quicker to write and to read
# than an object per entry (an aggregate's first archive is 30,000 stories). Pages stored
# before are a list of an object per story ({"id", "entry", "origins", "updated"}, each
# entry an ``entry_json`` object); both are read (``page_from``).
_PAGE_HEAD = '{"ids": '
_PAGE_DECODER = json.JSONDecoder()


def _entry_values(entry: Entry, times: Times) -> list[Any]:
    values = list(_ENTRY_VALUES(entry))
    for at in _ENTRY_TIMES_AT:
        value = values[at]
        if isinstance(value, datetime):
            values[at] = _iso_of(value, times)
    return values


def page_json(stories: Sequence[Story], times: Times | None = None) -> str:
    """An archive page's stories as the JSON text stored (the layout above), in their order;
    ``times`` as for ``entry_json``."""
    if times is None:
        times = {}
    return json.dumps(
        {
            "ids": [story.id for story in stories],
            "fields": _ENTRY_FIELDS,
            "stories": [
                [
                    _entry_values(story.entry, times),
                    [_entry_values(copy, times) for copy in story.origins],
                    _iso_of(story.updated, times),
                ]
                for story in stories
            ],
        }
    )


def page_from(text: str) -> list[Story]:
    """The stories of an archive page's stored text (either layout)."""
    page = json.loads(text)
    if isinstance(page, list):  # stored before the compact layout
        return [story_from(raw) for raw in page]
    names = tuple(page["fields"])
    entry_of = _values_entry if names == _ENTRY_FIELDS else _named_entry(names)
    return [
        made(
            Story,
            id=story_id,
            entry=entry_of(entry),
            origins=tuple(entry_of(copy) for copy in copies),
            updated=datetime.fromisoformat(updated),
        )
        for story_id, (entry, copies, updated) in zip(page["ids"], page["stories"], strict=True)
    ]


def _values_entry(values: list[Any]) -> Entry:
    """The entry of ``_entry_values`` written with Entry's fields as they are now."""
    for at in _ENTRY_TIMES_AT:
        value = values[at]
        if isinstance(value, str):
            values[at] = datetime.fromisoformat(value)
    return made(Entry, **dict(zip(_ENTRY_FIELDS, values, strict=True)))


def _named_entry(names: tuple[str, ...]) -> Callable[[list[Any]], Entry]:
    """Entries written with other fields than Entry's now: matched by name (``entry_from``)."""
    return lambda values: entry_from(dict(zip(names, values, strict=True)))


def page_ids(text: str) -> list[str]:
    """The ids of an archive page's stories, in order, from its stored text: in the compact
    layout the first value, decoded alone; in the layout before, found by their place in the
    text where every story is matched (ids without escapes, the store's own layout), else by
    decoding the whole page."""
    if text.startswith(_PAGE_HEAD):
        ids, _ = _PAGE_DECODER.raw_decode(text, len(_PAGE_HEAD))
        return [str(story_id) for story_id in ids]
    found = _STORY_ID.findall(text)
    if found and len(found) == text.count(_ENTRY_KEY):
        return found
    return [str(raw["id"]) for raw in json.loads(text)]


# a story as pages were stored before the compact layout: an object whose first key is "id"
# and second "entry". Outside strings only, since a quote
# inside one is escaped.
_STORY_ID = re.compile(r'\{"id": "([^"\\]*)", "entry": \{')
_ENTRY_KEY = '"entry": {'


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
