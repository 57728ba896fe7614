"""The store's writes, one implementation for every backend: a backend supplies
``_transaction`` (one write, all or nothing, on something that runs statements) and its SQL
dialect (``SQLITE`` or ``POSTGRES``: the parameter mark, how a row replaces or yields to one of
the same key, how a list of values is bound); the statements and their values are the same for
all. The connection, the transaction and the driver stay in the backend."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..dedup import SourcePlan, Story
from ..errors import StoreError
from ..models import DetailPage, FeedTotals, OutputFile, Validators
from . import TABLES
from .reads import SELECT_ENTRIES
from .records import Times, entry_digest, entry_row, iso, page_json, stored_key, totals_row

__all__ = ["POSTGRES", "SQLITE", "Dialect", "Transaction", "Writes"]

_COLUMNS = dict(TABLES)


@dataclass(frozen=True)
class Dialect:
    """What differs in the SQL of the writes between the backends."""

    mark: str  # the driver's parameter mark
    # PostgreSQL: INSERT … ON CONFLICT (key) DO UPDATE / DO NOTHING, a list bound as one array;
    # SQLite: its own INSERT OR REPLACE / OR IGNORE, a list bound as one mark per value
    on_conflict: bool

    def marks(self, count: int) -> str:
        return ", ".join(self.mark for _ in range(count))

    def replace(self, table: str, key: Sequence[str]) -> str:
        """A whole row of ``table`` (its columns of TABLES) written over the row of the same
        ``key``, if there is one."""
        columns = _COLUMNS[table]
        values = f"({', '.join(columns)}) VALUES ({self.marks(len(columns))})"
        if not self.on_conflict:
            return f"INSERT OR REPLACE INTO {table} {values}"
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        return f"INSERT INTO {table} {values} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}"

    def keep(self, table: str, columns: Sequence[str]) -> str:
        """A row written only where none of the same key is stored (that one is kept)."""
        values = f"({', '.join(columns)}) VALUES ({self.marks(len(columns))})"
        if not self.on_conflict:
            return f"INSERT OR IGNORE INTO {table} {values}"
        return f"INSERT INTO {table} {values} ON CONFLICT DO NOTHING"

    def not_in(self, column: str, values: Sequence[str]) -> tuple[str, tuple[object, ...]]:
        """``column`` not among ``values``, as SQL and its arguments."""
        if self.on_conflict:
            return f"NOT {column} = ANY({self.mark})", (list(values),)
        if not values:  # every row (`NOT IN (NULL)` would match none)
            return "1 = 1", ()
        return f"{column} NOT IN ({self.marks(len(values))})", tuple(values)


SQLITE = Dialect("?", on_conflict=False)
POSTGRES = Dialect("%s", on_conflict=True)


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction(Protocol):
    """What a backend's ``_transaction`` yields: a SQLite connection, a PostgreSQL cursor."""

    def execute(self, sql: str, args: Any = ..., /) -> Rows: ...

    def executemany(self, sql: str, rows: Any, /) -> object: ...


_ENTRY_COLUMNS = _COLUMNS["entries"]
_DIGESTS_AT_ONCE = 500  # entries read at once to fill in their digests (migration)
# an upsert by id only: an entry that would take another entry's guid is refused, not merged
_UPDATE_ENTRY = ", ".join(f"{c} = EXCLUDED.{c}" for c in _ENTRY_COLUMNS if c != "id")


@functools.cache
def _insert_entry(sql: Dialect) -> str:
    """An entry's row written, over the row of the same id if there is one."""
    return (
        f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) VALUES"
        f" ({sql.marks(len(_ENTRY_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET {_UPDATE_ENTRY}"
    )


class Writes:
    """The write calls of the ``Store`` protocol (see its contract in ``store/__init__.py``),
    and the copy of a whole state (``rows`` and ``load``, for migrate-state)."""

    _DIALECT = SQLITE

    def _transaction(self) -> AbstractContextManager[Transaction]:
        raise NotImplementedError

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

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
        sql = self._DIALECT
        m = sql.mark
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                f"UPDATE sources SET settings = {m}, own_title = COALESCE({m}, own_title),"
                f" own_language = COALESCE({m}, own_language) WHERE id = {m}",
                (settings, title or None, language or None, source_id),
            )
            entries = plan.new + plan.changed
            if entries:
                times: Times = {}
                rows = []
                for entry in entries:
                    row = entry_row(entry, times)
                    key = stored_key(entry.title, plan.keys.get(entry.id))
                    rows.append((*row, entry_digest(row, entry.content), key))
                db.executemany(_insert_entry(sql), rows)
                articles = [(entry.id, entry.content) for entry in entries if entry.content]
                if articles:
                    db.executemany(sql.replace("articles", ("entry_id",)), articles)
            for page in details:
                db.execute(
                    sql.replace("detail_pages", ("source_id", "url")),
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
                f"UPDATE sources SET etag = {m}, last_modified = {m}, last_item_count = {m},"
                f" last_success = {m}, consecutive_failures = 0 WHERE id = {m}",
                (validators.etag, validators.last_modified, item_count, iso(at), source_id),
            )

    def save_not_modified(self, source_id: str, at: datetime, settings: str | None = None) -> None:
        self._update_source(
            source_id,
            "last_success = {m}, consecutive_failures = 0, settings = COALESCE(settings, {m})",
            (iso(at), settings),
        )

    def save_archived_page(
        self, feed_id: str, number: int, stories: Sequence[Story], at: datetime
    ) -> None:
        self.save_archived_pages(feed_id, [(number, stories)], at)

    def save_archived_pages(
        self, feed_id: str, pages: Iterable[tuple[int, Sequence[Story]]], at: datetime
    ) -> None:
        statement = self._DIALECT.keep("archive_pages", _COLUMNS["archive_pages"])
        stamp = iso(at)
        times: Times = {}  # the stories of a feed's pages share many of their times
        with self._transaction() as db:
            for number, stories in pages:  # each page's JSON made as it is written
                db.execute(statement, (feed_id, number, page_json(stories, times), stamp))

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None:
        self._update_source(
            source_id,
            "last_error = {m}, last_error_at = {m},"
            " consecutive_failures = consecutive_failures + 1",
            (reason, iso(at)),
        )

    def _update_source(self, source_id: str, assignments: str, args: tuple[object, ...]) -> None:
        """The source's row (made if there is none) updated: ``assignments`` with ``{m}`` for
        the parameter marks, ``args`` their values."""
        m = self._DIALECT.mark
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                f"UPDATE sources SET {assignments.format(m=m)} WHERE id = {m}", (*args, source_id)
            )

    def save_published_digest(self, feed_id: str, digest: str) -> None:
        self.save_published_digests([(feed_id, digest)])

    def save_published_digests(self, digests: Sequence[tuple[str, str]]) -> None:
        if not digests:
            return
        sql = self._DIALECT
        with self._transaction() as db:
            db.executemany(sql.replace("published", ("feed_id",)), digests)
            db.executemany(
                f"DELETE FROM removed_feeds WHERE feed_id = {sql.mark}",
                [(feed_id,) for feed_id, _ in digests],
            )

    def save_outputs(self, files: Sequence[OutputFile], removed: Sequence[str] = ()) -> None:
        rows = []
        for file in files:
            if file.data is None:
                raise StoreError(f"{file.name}: a published file is stored with its data")
            rows.append((file.name, file.data, file.etag, iso(file.modified), file.media_type))
        sql = self._DIALECT
        with self._transaction() as db:
            if rows:
                db.executemany(
                    "INSERT INTO outputs (name, data, etag, modified, media_type)"
                    f" VALUES ({sql.marks(5)}) ON CONFLICT (name) DO UPDATE SET"
                    " data = EXCLUDED.data, etag = EXCLUDED.etag, modified = EXCLUDED.modified,"
                    " media_type = EXCLUDED.media_type WHERE outputs.etag <> EXCLUDED.etag",
                    rows,
                )
            if removed:
                db.executemany(
                    f"DELETE FROM outputs WHERE name = {sql.mark}", [(name,) for name in removed]
                )

    def save_feed_totals(self, totals: FeedTotals) -> None:
        self.save_all_feed_totals([totals])

    def save_all_feed_totals(self, totals: Sequence[FeedTotals]) -> None:
        if not totals:
            return
        with self._transaction() as db:
            db.executemany(
                self._DIALECT.replace("feed_summaries", ("feed_id",)),
                [totals_row(each) for each in totals],
            )

    def save_refresh(self, finished: datetime, seconds: float, errors: Mapping[str, int]) -> None:
        """A completed refresh: when it ended, how long it took, its failures by kind."""
        sql = self._DIALECT
        with self._transaction() as db:
            db.execute(sql.replace("last_refresh", ("one",)), (1, iso(finished), seconds))
            for kind, count in errors.items():
                db.execute(
                    f"INSERT INTO fetch_errors (kind, count) VALUES ({sql.marks(2)})"
                    " ON CONFLICT (kind) DO UPDATE SET count = fetch_errors.count + EXCLUDED.count",
                    (kind, count),
                )

    def mark_removed(self, feed_id: str, at: datetime) -> None:
        """The feed's files were deleted: no longer published, but known as gone."""
        sql = self._DIALECT
        with self._transaction() as db:
            db.execute(f"DELETE FROM published WHERE feed_id = {sql.mark}", (feed_id,))
            db.execute(sql.replace("removed_feeds", ("feed_id",)), (feed_id, iso(at)))

    def prune(self, keep: Sequence[str]) -> dict[str, int]:
        """Delete the entries and state of every source not in ``keep``; entries per source."""
        by_source, kept = self._DIALECT.not_in("source_id", keep)
        by_id, _ = self._DIALECT.not_in("id", keep)
        with self._transaction() as db:
            counts = db.execute(
                f"SELECT source_id, COUNT(*) FROM entries WHERE {by_source} GROUP BY source_id",
                kept,
            ).fetchall()
            stateful = db.execute(f"SELECT id FROM sources WHERE {by_id}", kept).fetchall()
            db.execute(f"DELETE FROM entries WHERE {by_source}", kept)
            db.execute(f"DELETE FROM sources WHERE {by_id}", kept)
        pruned = {str(sid): 0 for (sid,) in stateful}
        pruned.update({str(sid): int(n) for sid, n in counts})
        return pruned

    # --- leases ---------------------------------------------------------------------------

    def claim(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        sql = self._DIALECT
        with self._transaction() as db:
            row = db.execute(
                f"INSERT INTO leases (name, holder, until) VALUES ({sql.marks(3)})"
                " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
                f" until = EXCLUDED.until WHERE leases.until <= {sql.mark}"
                " OR leases.holder = EXCLUDED.holder RETURNING holder",
                (name, holder, iso(until), iso(now)),
            ).fetchone()
        return row is not None

    def release(self, name: str, holder: str) -> None:
        m = self._DIALECT.mark
        with self._transaction() as db:
            db.execute(f"DELETE FROM leases WHERE name = {m} AND holder = {m}", (name, holder))

    # --- copying a whole state ------------------------------------------------------------

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return self._read(f"SELECT {', '.join(_COLUMNS[table])} FROM {table}", ())

    def load(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        with self._transaction() as db:
            for table, columns in TABLES:
                rows = tables.get(table, ())
                if rows:
                    db.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({self._DIALECT.marks(len(columns))})",
                        rows,
                    )

    # --- schema ---------------------------------------------------------------------------

    def _migrate_in(
        self, db: Transaction, migrations: Sequence[tuple[int, Sequence[str]]], where: str
    ) -> None:
        """In the backend's migration transaction: the ``migrations`` the state lacks applied,
        each recorded in ``schema_version``, then the digests of the entries that have none
        filled in; a state newer than the last refused."""
        latest = migrations[-1][0]
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0) if row else 0
        if current > latest:
            raise StoreError(
                f"{where} has schema version {current}, newer than this "
                f"civicfeed understands ({latest}); upgrade civicfeed"
            )
        for version, statements in migrations:
            if version > current:
                for statement in statements:
                    db.execute(statement)
                db.execute(
                    f"INSERT INTO schema_version VALUES ({self._DIALECT.marks(2)})",
                    (version, iso(datetime.now(UTC))),
                )
        if current < latest:
            self._fill_digests(db)

    def _fill_digests(self, db: Transaction) -> None:
        """Entries without a digest or a title key (stored before entries had them, or
        changed by a migration that set them to NULL) get both, a batch of rows at a
        time."""
        m = self._DIALECT.mark
        missing = [
            str(r[0])
            for r in db.execute(
                "SELECT id FROM entries WHERE digest IS NULL OR title_key IS NULL"
            ).fetchall()
        ]
        for start in range(0, len(missing), _DIGESTS_AT_ONCE):
            chunk = missing[start : start + _DIGESTS_AT_ONCE]
            rows = db.execute(
                f"{SELECT_ENTRIES} WHERE e.id IN ({self._DIALECT.marks(len(chunk))})", tuple(chunk)
            ).fetchall()
            db.executemany(
                f"UPDATE entries SET digest = {m}, title_key = {m} WHERE id = {m}",
                [(entry_digest(tuple(r[:10]), r[10]), stored_key(r[4]), r[0]) for r in rows],
            )

    def _ensure(self, db: Transaction, source_id: str) -> None:
        db.execute(self._DIALECT.keep("sources", ("id",)), (source_id,))
