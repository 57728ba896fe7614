"""The SQLite store: one file, WAL, every write one transaction (or a savepoint in a group of
writes committed together, see ``grouped``)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..dedup import SourcePlan, Story
from ..errors import StoreError
from ..models import DetailPage, FeedTotals, OutputFile, Validators
from . import TABLES
from .migrations import LATEST, MIGRATIONS
from .reads import Reads
from .records import iso, story_json, totals_row, xml_safe

_ENTRY_COLUMNS = (
    "id, source_id, guid, link, title, published, date_known, summary, first_seen, updated"
)
# an upsert by id only: an entry that would take another entry's guid is refused, not merged
_UPDATE_ENTRY = ", ".join(f"{c} = excluded.{c}" for c in _ENTRY_COLUMNS.split(", ") if c != "id")


# a group of writes (see SQLiteStore.grouped) is committed after this many, or this long
GROUP_WRITES = 64
GROUP_SECONDS = 0.5


class _Group:
    def __init__(self) -> None:
        self.begin()

    def begin(self) -> None:
        self.writes, self.started = 0, time.monotonic()

    def full(self) -> bool:
        self.writes += 1
        return self.writes >= GROUP_WRITES or time.monotonic() - self.started >= GROUP_SECONDS


class SQLiteStore(Reads):
    _group: _Group | None = None

    def __init__(self, path: Path, *, read_only: bool = False, migrate: bool = True) -> None:
        """``read_only``: for status, health and serve; takes no lock and never writes, so a
        refresh holding the write lock never blocks it. A file whose schema is older than
        this civicfeed's is opened for writing instead, to be migrated."""
        self.path = path
        # one connection, used from whichever thread calls (the event loop hands store calls
        # to a thread): one call at a time
        self._lock = threading.RLock()
        self.read_only = read_only
        if read_only and self._open_read_only():
            return
        self.read_only = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=60, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed refresh survives a power cut, not only a killed process
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.create_function("xml_safe", 1, xml_safe, deterministic=True)
            if migrate:
                self.migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the state folder {path.parent}: {exc}") from exc

    def _open_read_only(self) -> bool:
        try:
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=5,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute("PRAGMA query_only=1")
            self._db.create_function("xml_safe", 1, xml_safe, deterministic=True)
            found = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            version = (
                self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
                if found
                else 0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the state database {self.path}: {exc}") from exc
        if (version or 0) > LATEST:
            self._db.close()
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this "
                f"civicfeed understands ({LATEST}); upgrade civicfeed"
            )
        if (version or 0) < LATEST:
            self._db.close()
            return False
        return True

    # --- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            current = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > LATEST:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this "
                    f"civicfeed understands ({LATEST}); upgrade civicfeed"
                )
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_version VALUES (?, ?)",
                        (version, iso(datetime.now(UTC))),
                    )

    @property
    def schema_version(self) -> int:
        with self._lock:
            try:
                row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.OperationalError:  # no schema yet
                return 0
        return int(row[0] or 0)

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Writes inside are committed together, a group at a time (GROUP_WRITES writes or
        GROUP_SECONDS since the group began, and the rest at the end): one flush to disk per
        group instead of one per write. Each write stays all or nothing (a savepoint); a kill
        loses at most the open group, whose sources the next run fetches again. For a writer
        that is alone (the caller holds the state's lock): a lease taken inside is committed
        with its group."""
        with self._lock:
            self._group = _Group()
        try:
            yield
        finally:
            with self._lock:
                self._group = None
                self._commit_open()

    def _commit_open(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            group = self._group
            try:
                if group is None:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        yield self._db
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
                    self._db.execute("COMMIT")
                    return
                if not self._db.in_transaction:
                    self._db.execute("BEGIN IMMEDIATE")
                    group.begin()
                self._db.execute("SAVEPOINT write")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK TO write")
                    self._db.execute("RELEASE write")
                    raise
                self._db.execute("RELEASE write")
                if group.full():
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"state database {self.path}: {exc}") from exc

    # --- reads ----------------------------------------------------------------------------

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    # --- writes ---------------------------------------------------------------------------

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
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET settings = ?, own_title = COALESCE(?, own_title),"
                " own_language = COALESCE(?, own_language) WHERE id = ?",
                (settings, title or None, language or None, source_id),
            )
            for entry in plan.new + plan.changed:
                db.execute(
                    f"INSERT INTO entries ({_ENTRY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    f"{_UPDATE_ENTRY}",
                    (
                        entry.id,
                        entry.source_id,
                        entry.guid,
                        entry.link,
                        entry.title,
                        iso(entry.published),
                        int(entry.date_known),
                        entry.summary,
                        iso(entry.first_seen),
                        iso(entry.updated),
                    ),
                )
                if entry.content:
                    db.execute(
                        "INSERT OR REPLACE INTO articles (entry_id, content) VALUES (?, ?)",
                        (entry.id, entry.content),
                    )
            for page in details:
                db.execute(
                    "INSERT OR REPLACE INTO detail_pages (source_id, url, etag, last_modified,"
                    " checked, failures, undated_listing) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        source_id,
                        page.url,
                        page.validators.etag,
                        page.validators.last_modified,
                        iso(page.checked) if page.checked else None,
                        page.failures,
                        page.undated_listing,
                    ),
                )
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET etag = ?, last_modified = ?, last_item_count = ?, "
                "last_success = ?, consecutive_failures = 0 WHERE id = ?",
                (validators.etag, validators.last_modified, item_count, iso(at), source_id),
            )

    def save_not_modified(self, source_id: str, at: datetime, settings: str | None = None) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_success = ?, consecutive_failures = 0,"
                " settings = COALESCE(settings, ?) WHERE id = ?",
                (iso(at), settings, source_id),
            )

    def save_archived_page(
        self, feed_id: str, number: int, stories: Sequence[Story], at: datetime
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO archive_pages (feed_id, number, stories, completed_at)"
                " VALUES (?, ?, ?, ?)",
                (feed_id, number, json.dumps([story_json(s) for s in stories]), iso(at)),
            )

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_error = ?, last_error_at = ?, "
                "consecutive_failures = consecutive_failures + 1 WHERE id = ?",
                (reason, iso(at), source_id),
            )

    def save_published_digest(self, feed_id: str, digest: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO published (feed_id, digest) VALUES (?, ?)",
                (feed_id, digest),
            )
            db.execute("DELETE FROM removed_feeds WHERE feed_id = ?", (feed_id,))

    def save_outputs(self, files: Sequence[OutputFile], removed: Sequence[str] = ()) -> None:
        rows = []
        for file in files:
            if file.data is None:
                raise StoreError(f"{file.name}: a published file is stored with its data")
            rows.append((file.name, file.data, file.etag, iso(file.modified), file.media_type))
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO outputs (name, data, etag, modified, media_type)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " data = excluded.data, etag = excluded.etag, modified = excluded.modified,"
                " media_type = excluded.media_type WHERE outputs.etag <> excluded.etag",
                rows,
            )
            db.executemany("DELETE FROM outputs WHERE name = ?", [(name,) for name in removed])

    def save_feed_totals(self, totals: FeedTotals) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO feed_summaries (feed_id, count, updated, newest)"
                " VALUES (?, ?, ?, ?)",
                totals_row(totals),
            )

    def save_refresh(self, finished: datetime, seconds: float, errors: Mapping[str, int]) -> None:
        """A completed refresh: when it ended, how long it took, its failures by kind."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO last_refresh (one, finished_at, seconds) VALUES (1, ?, ?)",
                (iso(finished), seconds),
            )
            for kind, count in errors.items():
                db.execute(
                    "INSERT INTO fetch_errors (kind, count) VALUES (?, ?) ON CONFLICT (kind) "
                    "DO UPDATE SET count = count + excluded.count",
                    (kind, count),
                )

    def mark_removed(self, feed_id: str, at: datetime) -> None:
        """The feed's files were deleted: no longer published, but known as gone."""
        with self._transaction() as db:
            db.execute("DELETE FROM published WHERE feed_id = ?", (feed_id,))
            db.execute(
                "INSERT OR REPLACE INTO removed_feeds (feed_id, removed_at) VALUES (?, ?)",
                (feed_id, iso(at)),
            )

    def prune(self, keep: Sequence[str]) -> dict[str, int]:
        """Delete the entries and state of every source not in ``keep``; entries per source."""
        with self._transaction() as db:
            marks = ", ".join("?" for _ in keep) or "NULL"
            counts = db.execute(
                f"SELECT source_id, COUNT(*) FROM entries WHERE source_id NOT IN ({marks}) "
                "GROUP BY source_id",
                tuple(keep),
            ).fetchall()
            stateful = db.execute(
                f"SELECT id FROM sources WHERE id NOT IN ({marks})", tuple(keep)
            ).fetchall()
            db.execute(f"DELETE FROM entries WHERE source_id NOT IN ({marks})", tuple(keep))
            db.execute(f"DELETE FROM sources WHERE id NOT IN ({marks})", tuple(keep))
        pruned = {str(sid): 0 for (sid,) in stateful}
        pruned.update({str(sid): int(n) for sid, n in counts})
        return pruned

    # --- leases ---------------------------------------------------------------------------

    def claim(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        with self._transaction() as db:
            row = db.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.until <= ? OR leases.holder = excluded.holder RETURNING holder",
                (name, holder, iso(until), iso(now)),
            ).fetchone()
        return row is not None

    def release(self, name: str, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    # --- copying a whole state ------------------------------------------------------------

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        columns = dict(TABLES)[table]
        return self._read(f"SELECT {', '.join(columns)} FROM {table}", ())

    def load(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        with self._transaction() as db:
            for table, columns in TABLES:
                marks = ", ".join("?" for _ in columns)
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    tables.get(table, ()),
                )

    @staticmethod
    def _ensure(db: sqlite3.Connection, source_id: str) -> None:
        db.execute("INSERT OR IGNORE INTO sources (id) VALUES (?)", (source_id,))

    def close(self) -> None:
        with self._lock:  # a write under way in another thread is finished first
            if self._group is not None:
                self._group = None
                self._commit_open()
            self._db.close()
