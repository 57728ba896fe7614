"""The store's reads, one implementation for every backend: a backend supplies ``_read`` (one
query, its rows) and its parameter mark (``?`` or ``%s``); the SQL and the conversion of rows
into records are the same for all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from ..dedup import TITLE_KEY_RULES, Story, title_key
from ..models import DetailPage, Entry, FeedTotals, OutputFile, SourceState, Validators, made
from .records import dt, entry_digest, entry_from, page_from, page_ids

__all__ = ["SELECT_ENTRIES", "SELECT_HEADS", "Reads"]

# the article of an entry (follow) lives beside it, in the table ``articles``
SELECT_ENTRIES = (
    "SELECT e.id, e.source_id, e.guid, e.link, e.title, e.published, e.date_known, e.summary,"
    " e.first_seen, e.updated, a.content FROM entries e LEFT JOIN articles a ON a.entry_id = e.id"
)
# an entry without its text (summary, article), and its digest
SELECT_HEADS = (
    "SELECT id, source_id, guid, link, title, published, date_known, first_seen, updated,"
    " digest, title_key FROM entries"
)
# ids bound at once in one read of entries by id
_IDS_AT_ONCE = 500


class Reads:
    """The read calls of the ``Store`` protocol (see its contract in ``store/__init__.py``)."""

    _MARK = "?"  # the driver's parameter mark

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _in(self, column: str, values: Sequence[str]) -> tuple[str, tuple[object, ...]]:
        """``column IN (values)`` as SQL and its arguments."""
        marks = ", ".join(self._MARK for _ in values)
        return f"{column} IN ({marks})", tuple(values)

    def source_state(self, source_id: str) -> SourceState:
        rows = self._read(f"{_SELECT_STATE} WHERE id = {self._MARK}", (source_id,))
        return _state(rows[0]) if rows else SourceState(source_id)

    def source_states(self) -> dict[str, SourceState]:
        return {str(row[0]): _state(row) for row in self._read(_SELECT_STATE, ())}

    def entries(self, source_ids: Sequence[str]) -> list[Entry]:
        if not source_ids:
            return []
        where, args = self._in("e.source_id", source_ids)
        return _entries(self._read(f"{SELECT_ENTRIES} WHERE {where}", args))

    def entries_by_id(self, entry_ids: Sequence[str]) -> list[Entry]:
        return _entries(self._entry_rows(entry_ids))

    def _entry_rows(self, entry_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """The rows of SELECT_ENTRIES of these ids, a few hundred ids per read."""
        unique = list(dict.fromkeys(entry_ids))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(unique), _IDS_AT_ONCE):
            where, args = self._in("e.id", unique[start : start + _IDS_AT_ONCE])
            rows += self._read(f"{SELECT_ENTRIES} WHERE {where}", args)
        return rows

    def entry_heads(self, source_ids: Sequence[str]) -> list[tuple[Entry, str, str]]:
        if not source_ids:
            return []
        where, args = self._in("source_id", source_ids)
        return self._with_digests(_heads(self._read(f"{SELECT_HEADS} WHERE {where}", args)))

    def whole_entries(
        self, source_ids: Sequence[str], at_most: int
    ) -> list[tuple[Entry, str, str]] | None:
        if not source_ids:
            return []
        where, args = self._in("e.source_id", source_ids)
        rows = self._read(f"{_SELECT_WHOLE} WHERE {where} LIMIT {int(at_most) + 1}", args)
        if len(rows) > at_most:
            return None
        entries = _entries(rows)
        return self._with_digests(
            [(entry, r[11], _key_of(entry, r[12])) for entry, r in zip(entries, rows, strict=True)]
        )

    def _with_digests(
        self, heads: list[tuple[Entry, str | None, str]]
    ) -> list[tuple[Entry, str, str]]:
        """Heads whose digest is missing given one, made from the whole entry."""
        missing = [entry.id for entry, digest, _ in heads if digest is None]
        if not missing:
            return cast(list[tuple[Entry, str, str]], heads)  # no digest is None
        # none after migrate(), which fills them in: made here all the same
        found = {r[0]: entry_digest(tuple(r[:10]), r[10]) for r in self._entry_rows(missing)}
        return [
            (entry, digest if digest is not None else found.get(entry.id, ""), key)
            for entry, digest, key in heads
        ]

    def detail_pages(self, source_id: str) -> dict[str, DetailPage]:
        rows = self._read(
            "SELECT url, etag, last_modified, checked, failures, undated_listing"
            f" FROM detail_pages WHERE source_id = {self._MARK}",
            (source_id,),
        )
        return {
            str(url): DetailPage(
                url, Validators(etag, modified), dt(checked), int(failures), undated
            )
            for url, etag, modified, checked, failures, undated in rows
        }

    def entry_counts(self) -> dict[str, int]:
        rows = self._read("SELECT source_id, COUNT(*) FROM entries GROUP BY source_id", ())
        return {str(source_id): int(count) for source_id, count in rows}

    def published_digest(self, feed_id: str) -> str | None:
        rows = self._read(f"SELECT digest FROM published WHERE feed_id = {self._MARK}", (feed_id,))
        return str(rows[0][0]) if rows else None

    def published_feeds(self) -> list[str]:
        return [str(r[0]) for r in self._read("SELECT feed_id FROM published", ())]

    def removed_feeds(self) -> set[str]:
        return {str(r[0]) for r in self._read("SELECT feed_id FROM removed_feeds", ())}

    def last_refresh(self) -> tuple[datetime, float] | None:
        rows = self._read("SELECT finished_at, seconds FROM last_refresh", ())
        return (datetime.fromisoformat(rows[0][0]), float(rows[0][1])) if rows else None

    def fetch_error_counts(self) -> dict[str, int]:
        return {str(k): int(n) for k, n in self._read("SELECT kind, count FROM fetch_errors", ())}

    def output_files(self) -> list[OutputFile]:
        rows = self._read("SELECT name, etag, modified, media_type FROM outputs ORDER BY name", ())
        return [
            OutputFile(str(name), str(etag), datetime.fromisoformat(modified), str(media))
            for name, etag, modified, media in rows
        ]

    def output_file(self, name: str) -> OutputFile | None:
        rows = self._read(
            f"SELECT name, etag, modified, media_type, data FROM outputs WHERE name = {self._MARK}",
            (name,),
        )
        if not rows:
            return None
        found, etag, modified, media, data = rows[0]
        return OutputFile(
            str(found), str(etag), datetime.fromisoformat(modified), str(media), bytes(data)
        )

    def feed_totals(self) -> dict[str, FeedTotals]:
        rows = self._read("SELECT feed_id, count, updated, newest FROM feed_summaries", ())
        return {
            str(feed_id): FeedTotals(
                str(feed_id),
                int(count),
                datetime.fromisoformat(updated),
                _newest_entry(newest) if newest else None,
            )
            for feed_id, count, updated, newest in rows
        }

    def archived_pages(self, feed_id: str) -> list[list[Story]]:
        """The feed's complete archive pages, oldest first, as they were when complete."""
        rows = self._read(
            "SELECT number, stories FROM archive_pages"
            f" WHERE feed_id = {self._MARK} ORDER BY number",
            (feed_id,),
        )
        pages = []
        for expected, (number, stories) in enumerate(rows, start=1):
            if number != expected:
                break  # pages are kept in an unbroken run from 1
            pages.append(page_from(stories))
        return pages

    def archived_page_ids(self, feed_id: str) -> list[list[str]]:
        """The ids of the stories of each page ``archived_pages`` gives, in their order,
        without decoding the stories; read a few pages at a time."""
        rows = self._read(
            f"SELECT number FROM archive_pages WHERE feed_id = {self._MARK} ORDER BY number",
            (feed_id,),
        )
        numbers = []
        for expected, (number,) in enumerate(rows, start=1):
            if number != expected:
                break  # pages are kept in an unbroken run from 1
            numbers.append(expected)
        pages: list[list[str]] = []
        for start in range(0, len(numbers), _PAGES_AT_ONCE):
            first, last = numbers[start], numbers[min(start + _PAGES_AT_ONCE, len(numbers)) - 1]
            found = self._read(
                "SELECT number, stories FROM archive_pages"
                f" WHERE feed_id = {self._MARK} AND number BETWEEN {self._MARK} AND {self._MARK}"
                " ORDER BY number",
                (feed_id, first, last),
            )
            for expected, (number, stories) in enumerate(found, start=first):
                if number != expected:
                    return pages  # removed in between (prune): the run ends here
                pages.append(page_ids(stories))
        return pages

    def archived_page(self, feed_id: str, number: int) -> list[Story] | None:
        """One page of ``archived_pages``; None if it is not stored."""
        rows = self._read(
            "SELECT stories FROM archive_pages"
            f" WHERE feed_id = {self._MARK} AND number = {self._MARK}",
            (feed_id, number),
        )
        return page_from(rows[0][0]) if rows else None


# the newest entries of feed_summaries decoded before, by their JSON text (a publish reads
# the totals of every feed three times, and most of them are the same each time)
_NEWEST_KNOWN: dict[str, Entry] = {}
_NEWEST_KEPT = 8192


def _newest_entry(text: str) -> Entry:
    """The entry of a feed's totals from its JSON text (``records.totals_row``): decoded once
    per text, as entries are never changed in place."""
    entry = _NEWEST_KNOWN.get(text)
    if entry is None:
        if len(_NEWEST_KNOWN) >= _NEWEST_KEPT:
            _NEWEST_KNOWN.clear()
        entry = _NEWEST_KNOWN[text] = entry_from(json.loads(text))
    return entry


# an entry whole (SELECT_ENTRIES), then its digest and title key (as in SELECT_HEADS)
_SELECT_WHOLE = SELECT_ENTRIES.replace(" FROM entries e", ", e.digest, e.title_key FROM entries e")
_RULES = f"{TITLE_KEY_RULES}:"


def _key_of(entry: Entry, stored: str | None) -> str:
    """An entry's title key: the stored one, if made by the current rules, else made again."""
    if stored is not None and stored.startswith(_RULES):
        return stored[len(_RULES) :]
    return title_key(entry.title)


def _heads(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Entry, str | None, str]]:
    """(entry without its text, stored digest, title key) from rows of SELECT_HEADS."""
    times: dict[str, datetime] = {}  # each text read once: entries share their times
    fromiso = datetime.fromisoformat
    heads: list[tuple[Entry, str | None, str]] = []
    for r in rows:
        published, seen, updated = r[5], r[7], r[8]
        entry = made(  # without the frozen __init__'s checks: a large aggregate has many
            Entry,
            id=r[0],
            source_id=r[1],
            title=r[4],
            link=r[3],
            published=times.get(published) or times.setdefault(published, fromiso(published)),
            date_known=bool(r[6]),
            summary="",
            first_seen=times.get(seen) or times.setdefault(seen, fromiso(seen)),
            updated=times.get(updated) or times.setdefault(updated, fromiso(updated)),
            guid=r[2],
            content="",
        )
        heads.append((entry, r[9], _key_of(entry, r[10])))
    return heads


def _entries(rows: Sequence[tuple[Any, ...]]) -> list[Entry]:
    """Entries from rows of SELECT_ENTRIES, made as ``entry_heads`` makes its heads: each
    time text converted once (entries share their times), and each Entry ``made`` without
    the checks of the frozen __init__ (an aggregate reads 15,000 entries whole)."""
    times: dict[str, datetime] = {}
    fromiso = datetime.fromisoformat
    entries: list[Entry] = []
    for r in rows:
        published, seen, updated = r[5], r[8], r[9]
        entry = made(
            Entry,
            id=r[0],
            source_id=r[1],
            title=r[4],
            link=r[3],
            published=times.get(published) or times.setdefault(published, fromiso(published)),
            date_known=bool(r[6]),
            summary=r[7],
            first_seen=times.get(seen) or times.setdefault(seen, fromiso(seen)),
            updated=times.get(updated) or times.setdefault(updated, fromiso(updated)),
            guid=r[2],
            content=r[10] or "",
        )
        entries.append(entry)
    return entries


# archive pages read at once for their ids (each holds a page of stories as JSON, ~150 KB)
_PAGES_AT_ONCE = 16


_SELECT_STATE = (
    "SELECT id, etag, last_modified, last_item_count, last_success, last_error,"
    " last_error_at, consecutive_failures, settings, own_title, own_language FROM sources"
)


def _state(row: tuple[Any, ...]) -> SourceState:
    source_id, etag, modified, count, success, error, error_at, failures, settings, title, lang = (
        row
    )
    return SourceState(
        str(source_id),
        Validators(etag, modified),
        count,
        dt(success),
        error,
        dt(error_at),
        failures,
        settings,
        title,
        lang,
    )
