"""A store as an older release of civicfeed left it: for tests of the migrations that repair
what such a release stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from civicfeed.store.migrations import MIGRATIONS


def downgrade(path: Path, version: int) -> None:
    """Rewrite the store at ``path`` with the schema of ``version``, keeping the rows of its
    entries and sources (the columns that schema has)."""
    with sqlite3.connect(path) as db:
        rows = {
            table: (
                [c[1] for c in db.execute(f"PRAGMA table_info({table})")],
                db.execute(f"SELECT * FROM {table}").fetchall(),
            )
            for table in ("entries", "sources")
        }
    db.close()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.create_function("xml_safe", 1, lambda text: text)  # the store's own, for migrations
        db.execute(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
        )
        for number, statements in MIGRATIONS:
            if number > version:
                break
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?, '2026-01-01T00:00')", (number,))
        for table, (columns, values) in rows.items():
            kept = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
            chosen = [i for i, name in enumerate(columns) if name in kept]
            names = ", ".join(columns[i] for i in chosen)
            marks = ", ".join("?" for _ in chosen)
            db.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(row[i] for i in chosen) for row in values],
            )
    db.close()
