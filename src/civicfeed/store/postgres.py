"""The PostgreSQL store: the same logical schema and behaviour as the SQLite one, for a state
shared by several processes and machines. psycopg 3 and its connection pool live here only.

Timestamps are kept as the same UTC ISO text as in SQLite (store/records.py), so a state moves
between the backends row for row and everything read back is byte-for-byte what was written.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ..dedup import SourcePlan, Story
from ..errors import LockTimeout, StoreError
from ..models import DetailPage, FeedTotals, OutputFile, Validators
from . import TABLES
from .location import parse_state
from .reads import Reads
from .records import iso, story_json, totals_row

__all__ = ["MIGRATIONS", "PostgresStore", "advisory_lock"]

# Numbered migrations of this backend, append only. Version 1 is the logical schema of SQLite
# migrations 1-11 (store/migrations.py) in one step.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            last_item_count BIGINT,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures BIGINT NOT NULL DEFAULT 0,
            settings TEXT,
            own_title TEXT,
            own_language TEXT
        )""",
            """CREATE TABLE entries (
            id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL,
            guid TEXT,
            link TEXT,
            title TEXT NOT NULL,
            published TEXT NOT NULL,
            date_known INTEGER NOT NULL,
            summary TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            updated TEXT NOT NULL
        )""",
            "CREATE INDEX entries_by_source ON entries (source_id, published)",
            """CREATE UNIQUE INDEX entries_source_guid ON entries (source_id, guid)
            WHERE guid IS NOT NULL""",
            "CREATE TABLE published (feed_id TEXT PRIMARY KEY, digest TEXT NOT NULL)",
            """CREATE TABLE last_refresh (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            finished_at TEXT NOT NULL,
            seconds DOUBLE PRECISION NOT NULL
        )""",
            "CREATE TABLE fetch_errors (kind TEXT PRIMARY KEY, count BIGINT NOT NULL)",
            "CREATE TABLE removed_feeds (feed_id TEXT PRIMARY KEY, removed_at TEXT NOT NULL)",
            "CREATE TABLE articles (entry_id TEXT PRIMARY KEY, content TEXT NOT NULL)",
            """CREATE TABLE detail_pages (
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            checked TEXT,
            failures BIGINT NOT NULL DEFAULT 0,
            undated_listing TEXT,
            PRIMARY KEY (source_id, url)
        )""",
            """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until TEXT NOT NULL
        )""",
            """CREATE TABLE archive_pages (
            feed_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            stories TEXT NOT NULL,
            completed_at TEXT NOT NULL,
            PRIMARY KEY (feed_id, number)
        )""",
        ),
    ),
    # the published files, for `publish_to: database` (SQLite migration 12)
    (
        2,
        (
            """CREATE TABLE outputs (
            name TEXT PRIMARY KEY,
            data BYTEA NOT NULL,
            etag TEXT NOT NULL,
            modified TEXT NOT NULL,
            media_type TEXT NOT NULL
        )""",
        ),
    ),
)
MIGRATIONS += (
    # SQLite migration 13: per feed, what the index and the OPML file say of it
    (
        3,
        (
            """CREATE TABLE feed_summaries (
            feed_id TEXT PRIMARY KEY,
            count BIGINT NOT NULL,
            updated TEXT NOT NULL,
            newest TEXT
        )""",
        ),
    ),
)
LATEST = MIGRATIONS[-1][0]
assert [m[0] for m in MIGRATIONS] == list(range(1, LATEST + 1)), "migrations are numbered 1, 2, …"

_ENTRY_COLUMNS = dict(TABLES)["entries"]


def _lock_key(name: str) -> int:
    """A 64-bit advisory lock key for a name (stable across processes and releases)."""
    return zlib.crc32(f"civicfeed:{name}".encode()) | (0x43460000 << 32)  # 'CF' in the high word


_MIGRATION_LOCK = _lock_key("migrate")


class PostgresStore(Reads):
    _MARK = "%s"

    def __init__(self, url: str, *, read_only: bool = False, migrate: bool = True) -> None:
        self.url = url
        self.where = str(parse_state(url))  # for messages: without the password
        self.read_only = read_only
        options = "-c timezone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
        try:
            # one connection first, so that a wrong address or password is said as it is
            psycopg.connect(url, connect_timeout=10, options=options).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the state database {self.where}: {exc}") from exc
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True, "options": options, "connect_timeout": 10},
            timeout=60,
            open=True,
            name="civicfeed-state",
        )
        try:
            if read_only:
                self._check_current()
            elif migrate:
                self.migrate()
        except BaseException:
            self._pool.close()
            raise

    # --- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Under an advisory lock, so that processes starting together migrate once."""
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0) if row else 0
            if current > LATEST:
                raise StoreError(
                    f"{self.where} has schema version {current}, newer than this "
                    f"civicfeed understands ({LATEST}); upgrade civicfeed"
                )
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_version VALUES (%s, %s)",
                        (version, iso(datetime.now(UTC))),
                    )
            self._queue_schema(db)

    @staticmethod
    def _queue_schema(db: psycopg.Connection[Any]) -> None:
        """The job queue's tables (procrastinate's, for `civicfeed run --worker`), created in
        the same transaction when absent: the first migrator creates them, the others find
        them there."""
        row = db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is not None and row[0] is not None:
            return
        from ..workers import queue_schema  # the queue's library is imported there only

        db.execute(queue_schema())

    @property
    def schema_version(self) -> int:
        try:
            rows = self._read("SELECT MAX(version) FROM schema_version", ())
        except StoreError:
            return 0
        return int(rows[0][0] or 0)

    def _check_current(self) -> None:
        """As SQLite's read-only open: an older schema is migrated first (by a connection that
        may write), a newer one refused."""
        current = self.schema_version
        if current > LATEST:
            raise StoreError(
                f"{self.where} has schema version {current}, newer than this "
                f"civicfeed understands ({LATEST}); upgrade civicfeed"
            )
        if current < LATEST:
            PostgresStore(self.url).close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as db, db.transaction():
                yield db
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state database {self.where}: {exc}") from exc

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as db:
                return db.execute(sql, args).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state database {self.where}: {exc}") from exc

    # --- reads ----------------------------------------------------------------------------

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
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in _ENTRY_COLUMNS if c != "id")
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET settings = %s, own_title = COALESCE(%s, own_title),"
                " own_language = COALESCE(%s, own_language) WHERE id = %s",
                (settings, title or None, language or None, source_id),
            )
            for entry in plan.new + plan.changed:
                db.execute(
                    f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    f"ON CONFLICT (id) DO UPDATE SET {update}",
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
                        "INSERT INTO articles (entry_id, content) VALUES (%s, %s) "
                        "ON CONFLICT (entry_id) DO UPDATE SET content = EXCLUDED.content",
                        (entry.id, entry.content),
                    )
            for page in details:
                db.execute(
                    "INSERT INTO detail_pages (source_id, url, etag, last_modified, checked,"
                    " failures, undated_listing) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (source_id, url) DO UPDATE SET etag = EXCLUDED.etag,"
                    " last_modified = EXCLUDED.last_modified, checked = EXCLUDED.checked,"
                    " failures = EXCLUDED.failures, undated_listing = EXCLUDED.undated_listing",
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
                "UPDATE sources SET etag = %s, last_modified = %s, last_item_count = %s, "
                "last_success = %s, consecutive_failures = 0 WHERE id = %s",
                (validators.etag, validators.last_modified, item_count, iso(at), source_id),
            )

    def save_not_modified(self, source_id: str, at: datetime, settings: str | None = None) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_success = %s, consecutive_failures = 0,"
                " settings = COALESCE(settings, %s) WHERE id = %s",
                (iso(at), settings, source_id),
            )

    def save_archived_page(
        self, feed_id: str, number: int, stories: Sequence[Story], at: datetime
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO archive_pages (feed_id, number, stories, completed_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (feed_id, number, json.dumps([story_json(s) for s in stories]), iso(at)),
            )

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_error = %s, last_error_at = %s, "
                "consecutive_failures = consecutive_failures + 1 WHERE id = %s",
                (reason, iso(at), source_id),
            )

    def save_published_digest(self, feed_id: str, digest: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO published (feed_id, digest) VALUES (%s, %s)"
                " ON CONFLICT (feed_id) DO UPDATE SET digest = EXCLUDED.digest",
                (feed_id, digest),
            )
            db.execute("DELETE FROM removed_feeds WHERE feed_id = %s", (feed_id,))

    def save_outputs(self, files: Sequence[OutputFile], removed: Sequence[str] = ()) -> None:
        with self._transaction() as db, db.cursor() as cursor:
            if files:
                cursor.executemany(
                    "INSERT INTO outputs (name, data, etag, modified, media_type)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                    " data = EXCLUDED.data, etag = EXCLUDED.etag, modified = EXCLUDED.modified,"
                    " media_type = EXCLUDED.media_type WHERE outputs.etag <> EXCLUDED.etag",
                    [_output_row(file) for file in files],
                )
            if removed:
                cursor.execute("DELETE FROM outputs WHERE name = ANY(%s)", (list(removed),))

    def save_feed_totals(self, totals: FeedTotals) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO feed_summaries (feed_id, count, updated, newest)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (feed_id) DO UPDATE SET"
                " count = EXCLUDED.count, updated = EXCLUDED.updated, newest = EXCLUDED.newest",
                totals_row(totals),
            )

    def save_refresh(self, finished: datetime, seconds: float, errors: Mapping[str, int]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO last_refresh (one, finished_at, seconds) VALUES (1, %s, %s)"
                " ON CONFLICT (one) DO UPDATE SET finished_at = EXCLUDED.finished_at,"
                " seconds = EXCLUDED.seconds",
                (iso(finished), seconds),
            )
            for kind, count in errors.items():
                db.execute(
                    "INSERT INTO fetch_errors (kind, count) VALUES (%s, %s) ON CONFLICT (kind)"
                    " DO UPDATE SET count = fetch_errors.count + EXCLUDED.count",
                    (kind, count),
                )

    def mark_removed(self, feed_id: str, at: datetime) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM published WHERE feed_id = %s", (feed_id,))
            db.execute(
                "INSERT INTO removed_feeds (feed_id, removed_at) VALUES (%s, %s)"
                " ON CONFLICT (feed_id) DO UPDATE SET removed_at = EXCLUDED.removed_at",
                (feed_id, iso(at)),
            )

    def prune(self, keep: Sequence[str]) -> dict[str, int]:
        with self._transaction() as db:
            kept = (list(keep),)
            counts = db.execute(
                "SELECT source_id, COUNT(*) FROM entries WHERE NOT source_id = ANY(%s) "
                "GROUP BY source_id",
                kept,
            ).fetchall()
            stateful = db.execute("SELECT id FROM sources WHERE NOT id = ANY(%s)", kept).fetchall()
            db.execute("DELETE FROM entries WHERE NOT source_id = ANY(%s)", kept)
            db.execute("DELETE FROM sources WHERE NOT id = ANY(%s)", kept)
        pruned = {str(sid): 0 for (sid,) in stateful}
        pruned.update({str(sid): int(n) for sid, n in counts})
        return pruned

    # --- leases ---------------------------------------------------------------------------

    def claim(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        with self._transaction() as db:
            row = db.execute(
                "INSERT INTO leases (name, holder, until) VALUES (%s, %s, %s) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.until <= %s OR leases.holder = excluded.holder RETURNING holder",
                (name, holder, iso(until), iso(now)),
            ).fetchone()
        return row is not None

    def release(self, name: str, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    # --- copying a whole state ------------------------------------------------------------

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        columns = dict(TABLES)[table]
        return self._read(f"SELECT {', '.join(columns)} FROM {table}", ())

    def load(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        with self._transaction() as db:
            for table, columns in TABLES:
                rows = tables.get(table, ())
                if not rows:
                    continue
                with db.cursor() as cursor:
                    marks = ", ".join("%s" for _ in columns)
                    cursor.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                    )

    @staticmethod
    def _ensure(db: psycopg.Connection[Any], source_id: str) -> None:
        db.execute("INSERT INTO sources (id) VALUES (%s) ON CONFLICT DO NOTHING", (source_id,))

    def grouped(self) -> AbstractContextManager[None]:
        """Every write stays a transaction of its own here (the server's commits are cheap
        next to a SQLite file's flush, and other writers must see leases at once)."""
        return nullcontext()

    def close(self) -> None:
        self._pool.close()


def _output_row(file: OutputFile) -> tuple[object, ...]:
    if file.data is None:
        raise StoreError(f"{file.name}: a published file is stored with its data")
    return (file.name, file.data, file.etag, iso(file.modified), file.media_type)


@contextmanager
def advisory_lock(
    url: str,
    name: str,
    *,
    wait: float,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.2,
) -> Iterator[None]:
    """A session advisory lock on the database, held for the block: the server drops it when
    the holder's connection ends (its process died), as the kernel drops a file lock."""
    where = str(parse_state(url))
    key = _lock_key(name)
    try:
        db = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the state database {where}: {exc}") from exc
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            row = db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another refresh of {where} is still running after {wait:g}s; giving up"
                )
            if not told and on_wait:
                on_wait(f"waiting for another refresh of {where}")
                told = True
            time.sleep(poll)
        yield
    except psycopg.Error as exc:
        raise StoreError(f"state database {where}: {exc}") from exc
    finally:
        db.close()  # ending the session releases the lock
