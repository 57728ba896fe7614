"""The SQLite store: one file, WAL, every write one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..dedup import SourcePlan
from ..errors import StoreError
from ..models import Entry, SourceState, Validators
from ..xmlsafe import strip_controls
from .migrations import LATEST, MIGRATIONS

_ENTRY_COLUMNS = (
    "id, source_id, guid, link, title, published, date_known, summary, first_seen, updated"
)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _xml_safe(value: str | None) -> str | None:
    return strip_controls(value) if isinstance(value, str) else value


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed refresh survives a power cut, not only a killed process
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.create_function("xml_safe", 1, _xml_safe, deterministic=True)
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the state folder {path.parent}: {exc}") from exc

    # --- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
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
                        (version, _iso(datetime.now(UTC))),
                    )

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    # --- reads ----------------------------------------------------------------------------

    def source_state(self, source_id: str) -> SourceState:
        row = self._read(
            "SELECT etag, last_modified, last_item_count, last_success, last_error,"
            " last_error_at, consecutive_failures FROM sources WHERE id = ?",
            (source_id,),
        )
        if not row:
            return SourceState(source_id)
        etag, modified, count, success, error, error_at, failures = row[0]
        return SourceState(
            source_id,
            Validators(etag, modified),
            count,
            _dt(success),
            error,
            _dt(error_at),
            failures,
        )

    def entries(self, source_ids: Sequence[str]) -> list[Entry]:
        if not source_ids:
            return []
        marks = ", ".join("?" for _ in source_ids)
        rows = self._read(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE source_id IN ({marks})", tuple(source_ids)
        )
        return [
            Entry(
                id=r[0],
                source_id=r[1],
                guid=r[2],
                link=r[3],
                title=r[4],
                published=datetime.fromisoformat(r[5]),
                date_known=bool(r[6]),
                summary=r[7],
                first_seen=datetime.fromisoformat(r[8]),
                updated=datetime.fromisoformat(r[9]),
            )
            for r in rows
        ]

    def entry_counts(self) -> dict[str, int]:
        rows = self._read("SELECT source_id, COUNT(*) FROM entries GROUP BY source_id", ())
        return {str(source_id): int(count) for source_id, count in rows}

    def published_digest(self, feed_id: str) -> str | None:
        rows = self._read("SELECT digest FROM published WHERE feed_id = ?", (feed_id,))
        return str(rows[0][0]) if rows else None

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
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
    ) -> None:
        with self._transaction() as db:
            for entry in plan.new + plan.changed:
                db.execute(
                    f"INSERT OR REPLACE INTO entries ({_ENTRY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.id,
                        entry.source_id,
                        entry.guid,
                        entry.link,
                        entry.title,
                        _iso(entry.published),
                        int(entry.date_known),
                        entry.summary,
                        _iso(entry.first_seen),
                        _iso(entry.updated),
                    ),
                )
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET etag = ?, last_modified = ?, last_item_count = ?, "
                "last_success = ?, consecutive_failures = 0 WHERE id = ?",
                (validators.etag, validators.last_modified, item_count, _iso(at), source_id),
            )

    def save_not_modified(self, source_id: str, at: datetime) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_success = ?, consecutive_failures = 0 WHERE id = ?",
                (_iso(at), source_id),
            )

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None:
        with self._transaction() as db:
            self._ensure(db, source_id)
            db.execute(
                "UPDATE sources SET last_error = ?, last_error_at = ?, "
                "consecutive_failures = consecutive_failures + 1 WHERE id = ?",
                (reason, _iso(at), source_id),
            )

    def save_published_digest(self, feed_id: str, digest: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO published (feed_id, digest) VALUES (?, ?)",
                (feed_id, digest),
            )

    @staticmethod
    def _ensure(db: sqlite3.Connection, source_id: str) -> None:
        db.execute("INSERT OR IGNORE INTO sources (id) VALUES (?)", (source_id,))

    def close(self) -> None:
        self._db.close()
