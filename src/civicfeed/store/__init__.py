"""Store: entries and per-source state between runs, behind one protocol.

The backend is chosen by the ``state:`` location (store/location.py): a SQLite file by default
(store/sqlite.py), or a PostgreSQL database (store/postgres.py). The pipeline talks to the
``Store`` protocol only. Every backend passes the same contract suite (tests/store/).

The contract, for every backend:

- Every write below is one transaction: it is applied whole or not at all, and a reader never
  sees half of it. Writers of the same state are serialised by the backend (SQLite: one writer
  at a time; PostgreSQL: row locks), so two processes writing at once lose no update.
- Inside ``grouped()`` (used by a refresh that holds the state's lock) a backend may commit
  several writes at once; each stays whole, and all are committed when it ends.
- Reads are single statements; each sees a committed state (not necessarily the latest, when
  another process writes at the same moment).
- Entries are unique by id, and within a source by guid (where it has one): a second entry of
  the same source with the same guid is refused (StoreError), so two writers racing on one
  source cannot duplicate a story.
- Published files (the ``outputs`` table, for ``publish_to: database``, see write.py) are
  written by ``save_outputs`` in one transaction per publish: a reader sees every file of a
  publish or none of them. A file whose ETag is unchanged keeps its stored modification time.
  Two writers publishing at once each write their own files whole; of one name, the last
  committed wins.
- Timestamps are stored in UTC with microseconds and come back as aware datetimes.
- Every failure of the database is raised as StoreError, with the location and the reason.
- Each entry is stored with its digest (``records.entry_digest``) and its title key, written
  with it in the same statement: ``entry_heads`` gives the digest and the title key of the
  entry as ``entries`` reads it.
- ``migrate()`` brings the schema to this release's version (numbered migrations per backend,
  each applied once; concurrent migrators wait for each other). A store opened for writing
  migrates on open; one opened ``read_only`` never writes and takes no write lock (a schema
  older than this release's is opened for writing instead, to be migrated; a newer one is
  refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..dedup import SourcePlan, Story
from ..models import DetailPage, Entry, FeedTotals, OutputFile, SourceState, Validators
from .location import StateLocation, parse_state

__all__ = ["TABLES", "StateLocation", "Store", "open_store", "parse_state"]

# every table of the state with its columns, in the order of a copy (migrate-state): the same
# logical schema in every backend
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "sources",
        (
            "id",
            "etag",
            "last_modified",
            "last_item_count",
            "last_success",
            "last_error",
            "last_error_at",
            "consecutive_failures",
            "settings",
            "own_title",
            "own_language",
        ),
    ),
    (
        "entries",
        (
            "id",
            "source_id",
            "guid",
            "link",
            "title",
            "published",
            "date_known",
            "summary",
            "first_seen",
            "updated",
            "digest",
            "title_key",
        ),
    ),
    ("articles", ("entry_id", "content")),
    (
        "detail_pages",
        ("source_id", "url", "etag", "last_modified", "checked", "failures", "undated_listing"),
    ),
    ("published", ("feed_id", "digest")),
    ("removed_feeds", ("feed_id", "removed_at")),
    ("last_refresh", ("one", "finished_at", "seconds")),
    ("fetch_errors", ("kind", "count")),
    ("archive_pages", ("feed_id", "number", "stories", "completed_at")),
    ("outputs", ("name", "data", "etag", "modified", "media_type")),
    ("feed_summaries", ("feed_id", "count", "updated", "newest")),
)


class Store(Protocol):
    # --- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The version of the schema the state has now."""
        ...

    def migrate(self) -> None:
        """Apply the migrations the state lacks, each in its own transaction."""
        ...

    @property
    def serialised(self) -> bool:
        """Whether it makes one call at a time whichever thread calls (SQLite: one
        connection), so that a caller may hand several calls to one thread together; False
        where calls from several threads run side by side (PostgreSQL: a pool)."""
        ...

    # --- reads (one statement each) -------------------------------------------------------

    def source_state(self, source_id: str) -> SourceState:
        """Validators, counts and errors of a source; an empty state for an unknown one."""
        ...

    def source_states(self) -> dict[str, SourceState]:
        """The state of every source the store knows, by id (one read, for the schedule of
        the workers)."""
        ...

    def entries(self, source_ids: Sequence[str]) -> list[Entry]:
        """Every stored entry of these sources (articles included), in no particular order."""
        ...

    def entry_heads(self, source_ids: Sequence[str]) -> list[tuple[Entry, str, str]]:
        """Every stored entry of these sources without its summary and article (both ""),
        each with the digest of the whole entry (``records.entry_digest``: it changes
        whenever any field or the article does) and its title key (``dedup.title_key``,
        stored with the entry under the rules of ``dedup.TITLE_KEY_RULES``, made again
        under others), in no particular order: what is needed to merge and page a feed's
        stories and to know whether they changed, without reading their text."""
        ...

    def whole_entries(
        self, source_ids: Sequence[str], at_most: int
    ) -> list[tuple[Entry, str, str]] | None:
        """What ``entry_heads`` gives, each entry whole (summary and article included), in
        one read, when these sources have at most ``at_most`` entries stored; None when they
        have more (after reading ``at_most`` + 1 of them): a feed whose stories all fit in its
        subscription document, where every entry read is rendered."""
        ...

    def entries_by_id(self, entry_ids: Sequence[str]) -> list[Entry]:
        """The stored entries of these ids (articles included), in no particular order; an
        id that is not stored is left out."""
        ...

    def entry_counts(self) -> dict[str, int]:
        """Entries stored per source id (sources without entries are absent)."""
        ...

    def detail_pages(self, source_id: str) -> dict[str, DetailPage]:
        """What each detail page of the source said about itself, by URL."""
        ...

    def published_digest(self, feed_id: str) -> str | None:
        """The digest the feed's files were last rendered from, None if never."""
        ...

    def published_feeds(self) -> list[str]: ...

    def removed_feeds(self) -> set[str]: ...

    def last_refresh(self) -> tuple[datetime, float] | None:
        """When the last completed refresh finished and how long it took."""
        ...

    def fetch_error_counts(self) -> dict[str, int]:
        """Fetch failures by kind over all refreshes."""
        ...

    def archived_pages(self, feed_id: str) -> list[list[Story]]:
        """The feed's complete archive pages, oldest first, as they were when complete."""
        ...

    def archived_page_ids(self, feed_id: str) -> list[list[str]]:
        """The ids of the stories of each page of ``archived_pages``, in their order,
        without decoding the stories."""
        ...

    def archived_page(self, feed_id: str, number: int) -> list[Story] | None:
        """Page ``number`` (from 1) of ``archived_pages``; None if it is not stored."""
        ...

    def output_files(self) -> list[OutputFile]:
        """Every published file stored, sorted by name, without its data: one statement,
        so the list is one committed state of the outputs."""
        ...

    def output_file(self, name: str) -> OutputFile | None:
        """The stored file with its data; None if there is none of that name."""
        ...

    def feed_totals(self) -> dict[str, FeedTotals]:
        """What was last saved of every feed for the index (``save_feed_totals``), by feed
        id: one read, the same for every process that publishes from this state."""
        ...

    # --- writes (one transaction each) ----------------------------------------------------

    def save_success(
        self,
        source_id: str,
        plan: SourcePlan,
        *,
        validators: Validators,
        item_count: int,
        at: datetime,
        details: Sequence[DetailPage] = (),
        settings: str | None = None,
        title: str | None = None,
        language: str | None = None,
    ) -> None:
        """The plan's new and changed entries (and articles), the detail pages, and the
        source's validators, count, success time, extraction settings digest and own title
        and language (each kept when None), failures reset: all or nothing."""
        ...

    def save_not_modified(self, source_id: str, at: datetime, settings: str | None = None) -> None:
        """A 304: the success time set and the failures reset (and the settings digest where
        none was stored); nothing else changes."""
        ...

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None:
        """The reason and time recorded and the failure count incremented (atomically, so
        concurrent failures are all counted)."""
        ...

    def save_published_digest(self, feed_id: str, digest: str) -> None:
        """The feed is published from this digest (and no longer removed)."""
        ...

    def save_published_digests(self, digests: Sequence[tuple[str, str]]) -> None:
        """(feed id, digest) pairs, each as ``save_published_digest`` saves it, in their
        order, in one transaction."""
        ...

    def mark_removed(self, feed_id: str, at: datetime) -> None:
        """The feed's files were deleted: no longer published, but known as gone."""
        ...

    def save_feed_totals(self, totals: FeedTotals) -> None:
        """A feed's totals, replacing those saved before (the last writer's stay)."""
        ...

    def save_all_feed_totals(self, totals: Sequence[FeedTotals]) -> None:
        """Feeds' totals, each as ``save_feed_totals`` saves it, in their order, in one
        transaction."""
        ...

    def save_archived_page(
        self, feed_id: str, number: int, stories: Sequence[Story], at: datetime
    ) -> None:
        """A completed archive page, frozen: a page already stored is never replaced."""
        ...

    def save_archived_pages(
        self, feed_id: str, pages: Iterable[tuple[int, Sequence[Story]]], at: datetime
    ) -> None:
        """Completed archive pages (number, stories), each as ``save_archived_page`` stores
        it, in one transaction: all of them or none."""
        ...

    def save_outputs(self, files: Sequence[OutputFile], removed: Sequence[str] = ()) -> None:
        """Published files (each with its data) stored, replacing those of the same name,
        and the ``removed`` names deleted: one transaction. A file stored with the same ETag
        is left as it is (its modification time too)."""
        ...

    def save_refresh(self, finished: datetime, seconds: float, errors: Mapping[str, int]) -> None:
        """A completed refresh; the error counts are added to those stored."""
        ...

    def prune(self, keep: Sequence[str]) -> dict[str, int]:
        """Delete the entries and state of every source not in ``keep``; entries per source."""
        ...

    # --- leases (claims that expire) ------------------------------------------------------

    def claim(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take the lease ``name`` (``source:<id>``: the right to refresh a source) for
        ``holder`` until ``until``, if it is free, expired at ``now``, or already the
        holder's: one atomic statement, so of two processes claiming at once exactly one
        gets it. A holder that dies keeps it only until it expires. Leases are not copied by
        migrate-state."""
        ...

    def release(self, name: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still holds it."""
        ...

    # --- copying a whole state (migrate-state) --------------------------------------------

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of a table of TABLES, its columns in that order."""
        ...

    def load(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        """Rows of TABLES written into an empty state, in one transaction."""
        ...

    def grouped(self) -> AbstractContextManager[None]:
        """Writes made inside may be committed together, several at a time; each stays all
        or nothing, and all are committed when it ends."""
        ...

    def close(self) -> None: ...


def open_store(
    state: StateLocation | Path | str, *, read_only: bool = False, migrate: bool = True
) -> Store:
    """The store at ``state``: migrated to this release's schema unless ``read_only`` (or
    ``migrate=False``, for a caller that calls ``migrate()`` itself)."""
    location = parse_state(state)
    if location.path is not None:
        from .sqlite import SQLiteStore

        return SQLiteStore(location.path, read_only=read_only, migrate=migrate)
    from .postgres import PostgresStore

    assert location.url is not None
    return PostgresStore(location.url, read_only=read_only, migrate=migrate)
