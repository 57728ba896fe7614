"""The PostgreSQL store: the same logical schema and behaviour as the SQLite one, for a state
shared by several processes and machines. psycopg 3 and its connection pool live here only.

Timestamps are kept as the same UTC ISO text as in SQLite (store/records.py), so a state moves
between the backends row for row and everything read back is byte-for-byte what was written.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import LockTimeout, StoreError
from .location import parse_state
from .reads import Reads
from .writes import POSTGRES, Writes

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
MIGRATIONS += (
    # SQLite migration 14: per entry, the digest of all its fields and its article
    (4, ("ALTER TABLE entries ADD COLUMN digest TEXT",)),
)
MIGRATIONS += (
    # SQLite migration 15: per entry, its title key
    (5, ("ALTER TABLE entries ADD COLUMN title_key TEXT",)),
)
LATEST = MIGRATIONS[-1][0]
assert [m[0] for m in MIGRATIONS] == list(range(1, LATEST + 1)), "migrations are numbered 1, 2, …"


def _lock_key(name: str) -> int:
    """A 64-bit advisory lock key for a name (stable across processes and releases)."""
    return zlib.crc32(f"civicfeed:{name}".encode()) | (0x43460000 << 32)  # 'CF' in the high word


_MIGRATION_LOCK = _lock_key("migrate")


class PostgresStore(Reads, Writes):
    _MARK = POSTGRES.mark
    _DIALECT = POSTGRES
    serialised = False  # a pool of connections: calls from several threads run side by side

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
            self._migrate_in(db, MIGRATIONS, self.where)
            self._queue_schema(db)

    @staticmethod
    def _queue_schema(db: psycopg.Cursor[Any]) -> None:
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
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A connection of the pool in one transaction; its statements run on one cursor
        (which also runs a statement over many rows, see store/writes.py)."""
        try:
            with self._pool.connection() as db, db.transaction(), db.cursor() as cursor:
                yield cursor
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state database {self.where}: {exc}") from exc

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as db:
                return db.execute(sql, args).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state database {self.where}: {exc}") from exc

    def grouped(self) -> AbstractContextManager[None]:
        """Every write stays a transaction of its own here (the server's commits are cheap
        next to a SQLite file's flush, and other writers must see leases at once)."""
        return nullcontext()

    def close(self) -> None:
        self._pool.close()


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
