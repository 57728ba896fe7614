"""The SQLite store: numbered migrations on a real file, and what it remembers for publishing."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.dedup import SourcePlan
from civicfeed.errors import StoreError
from civicfeed.models import Entry, Validators
from civicfeed.store.migrations import LATEST, MIGRATIONS
from civicfeed.store.sqlite import SQLiteStore
from conftest import write_sources
from origin import Origin
from store.builders import make_entry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_version_1_file_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:  # a store as the first release left it
        db.execute(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
        )
        for statement in MIGRATIONS[0][1]:
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00+00:00')")
        db.execute(
            "INSERT INTO entries VALUES ('urn:uuid:1', 'herne', NULL, 'http://x/1', "
            "'Alt', '2019-02-11T00:00:00+00:00', 1, '', '2019-02-12T00:00:00+00:00', "
            "'2019-02-12T00:00:00+00:00')"
        )
    store = SQLiteStore(path)
    try:
        assert store.schema_version == LATEST
        (entry,) = store.entries(["herne"])
        assert entry.title == "Alt"
        assert store.published_digest("herne") is None
        store.save_published_digest("herne", "abc")
        assert store.published_digest("herne") == "abc"
    finally:
        store.close()
    again = SQLiteStore(path)  # opening a current file changes nothing
    try:
        assert again.schema_version == LATEST
        assert again.published_digest("herne") == "abc"
    finally:
        again.close()


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00+00:00')")
    with pytest.raises(StoreError, match="schema version 99, newer than this civicfeed"):
        SQLiteStore(path)


def good_and_broken(source_id: str = "a") -> tuple[Entry, Entry]:
    """Two new entries; the second breaks the table's NOT NULL rule for titles."""
    entry = make_entry(f"urn:uuid:{source_id}1", source_id, title="T", summary="")
    broken = make_entry(f"urn:uuid:{source_id}2", source_id, summary="")
    return entry, replace(broken, title=None)  # type: ignore[arg-type]


def test_a_source_update_is_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    with pytest.raises(StoreError):
        store.save_success(
            "a", SourcePlan(new=good_and_broken()), validators=Validators("e"), item_count=2, at=NOW
        )
    assert store.entries(["a"]) == []  # the first entry was rolled back with the second
    assert store.source_state("a").validators.etag is None
    store.close()


def test_grouped_writes_are_committed_together_and_each_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    other = sqlite3.connect(path)  # another process's view: committed data only
    try:
        with store.grouped():
            store.save_not_modified("a", NOW)
            good, _ = good_and_broken("b")
            store.save_success(
                "b", SourcePlan(new=(good,)), validators=Validators("b"), item_count=1, at=NOW
            )
            with pytest.raises(StoreError):
                store.save_success(
                    "c",
                    SourcePlan(new=good_and_broken("c")),
                    validators=Validators("c"),
                    item_count=2,
                    at=NOW,
                )
            assert [e.id for e in store.entries(["b", "c"])] == ["urn:uuid:b1"]
            assert other.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 0
        # the group ended: what succeeded is committed, the failed source left no trace
        rows = other.execute("SELECT id, etag FROM sources ORDER BY id").fetchall()
        assert rows == [("a", None), ("b", "b")]
        assert other.execute("SELECT id FROM entries").fetchall() == [("urn:uuid:b1",)]
    finally:
        other.close()
        store.close()


def test_unchanged_feeds_are_not_rendered_but_missing_files_come_back(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html", etag=False)
    config = write_sources(
        tmp_path,
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n",
        defaults="",
    )
    assert main(["refresh", "--config", str(config)]) == 0
    feeds = tmp_path / "feeds"
    rss = feeds / "herne.rss"
    first = rss.read_bytes()
    (feeds / "herne.json").unlink()
    rss.write_bytes(b"damaged")  # a change the digest cannot see ...
    assert main(["refresh", "--config", str(config)]) == 0
    assert (feeds / "herne.json").is_file()  # ... but a missing file makes it render again
    assert rss.read_bytes() == first
    # a new title in the configuration is a new digest: the feeds follow it
    config.write_text(config.read_text().replace("title: Herne", "title: Stadt Herne"))
    assert main(["refresh", "--config", str(config)]) == 0
    assert b"<title>Stadt Herne</title>" in rss.read_bytes()
