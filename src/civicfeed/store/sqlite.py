"""The SQLite store: one file, WAL, every write one transaction (or a savepoint in a group of
writes committed together, see ``grouped``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .migrations import LATEST, MIGRATIONS
from .reads import Reads
from .records import xml_safe
from .writes import Writes

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


class SQLiteStore(Reads, Writes):
    _group: _Group | None = None
    # one connection, one call at a time: a caller may hand several calls to one thread
    # together (see refresh._StoreCalls)
    serialised = True

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
            self._migrate_in(db, MIGRATIONS, str(self.path))

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

    def close(self) -> None:
        with self._lock:  # a write under way in another thread is finished first
            if self._group is not None:
                self._group = None
                self._commit_open()
            self._db.close()
