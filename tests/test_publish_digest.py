"""What a feed's digest is made of: every entry's digest kept in the store, so that the feeds
are merged and compared without reading their text, and rendered again whenever anything
rendered changed."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.config import Config, load_config
from civicfeed.dedup import SourcePlan, title_key
from civicfeed.models import Validators
from civicfeed.publish import Publisher
from civicfeed.store import open_store
from civicfeed.store.migrations import LATEST
from conftest import write_sources
from origin import Origin
from store.builders import NOW


@pytest.fixture
def published(origin: Origin, tmp_path: Path) -> Config:
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    origin.serve_fixture("/muelheim.atom", "muelheim.atom", content_type="application/atom+xml")
    path = write_sources(
        tmp_path,
        f"""  - id: dortmund
    title: Stadt Dortmund
    url: {origin.url("/dortmund.rss")}
  - id: muelheim
    title: Stadt Mülheim an der Ruhr
    url: {origin.url("/muelheim.atom")}
""",
        "feeds:\n  - id: ruhr\n    title: Ruhrgebiet\n    sources: [dortmund, muelheim]\n",
        defaults="",
    )
    assert main(["refresh", "--config", str(path)]) == 0
    return load_config(path)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_summary_changed_alone_renders_its_feeds_again(published: Config) -> None:
    store = open_store(published.state)
    try:
        others = {title_key(e.title) for e in store.entries(["dortmund"])}
        # a story of Mülheim alone, so that the aggregate shows Mülheim's copy of it
        entry = next(e for e in store.entries(["muelheim"]) if title_key(e.title) not in others)
        before = {feed: store.published_digest(feed) for feed in ("muelheim", "ruhr")}
        # nothing but the summary: not its time of change, nor any other field
        changed = replace(entry, summary="Eine ganz neue Zusammenfassung.")
        store.save_success(
            "muelheim",
            SourcePlan(changed=(changed,)),
            validators=Validators(),
            item_count=1,
            at=NOW,
        )
        report = Publisher(published).publish(store)
        assert {"muelheim.rss", "muelheim.atom", "ruhr.rss", "ruhr.atom"} <= set(report.written)
        for feed in ("muelheim", "ruhr"):
            assert store.published_digest(feed) != before[feed]
            for ext in ("rss", "atom", "json", "html"):
                text = (published.output / f"{feed}.{ext}").read_text(encoding="utf-8")
                assert "Eine ganz neue Zusammenfassung." in text, (feed, ext)
        assert "dortmund.rss" not in report.written
    finally:
        store.close()


def test_a_state_of_the_previous_schema_publishes_the_same_bytes(published: Config) -> None:
    first = _files(published.output)
    assert "ruhr.rss" in first
    store = open_store(published.state)
    digests = {feed: store.published_digest(feed) for feed in store.published_feeds()}
    store.close()
    assert published.state.path is not None
    # as the schema before entries had digests and title keys left it
    with sqlite3.connect(published.state.path) as db:
        db.execute("ALTER TABLE entries DROP COLUMN title_key")
        db.execute("ALTER TABLE entries DROP COLUMN digest")
        db.execute("DELETE FROM schema_version WHERE version >= ?", (LATEST - 1,))
    db.close()
    for path in published.output.rglob("*"):
        if path.is_file() and path.suffix != ".css":
            path.unlink()
    store = open_store(published.state)
    try:
        report = Publisher(published).publish(store)
        assert not report.errors
        assert _files(published.output) == first
        # the digests the migration gave the entries are those written with them
        assert {feed: store.published_digest(feed) for feed in digests} == digests
    finally:
        store.close()
