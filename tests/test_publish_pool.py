"""The feeds of many sources rendered in the worker processes write the same bytes, store the
same archive pages, totals and digests, as rendered by the publishing process alone."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from civicfeed import publish
from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.publish import FeedSpec, Publisher
from civicfeed.store import Store, open_store
from conftest import write_sources
from origin import Origin

NOW = "2026-03-01T08:00:00+00:00"


def _config(origin: Origin, folder: Path) -> Path:
    folder.mkdir()
    return write_sources(
        folder,
        f"""  - id: herne
    title: Integrationsportal der Stadt Herne
    url: {origin.url("/herne/")}
    html: {{item: article.news-teaser, title: h3, date: .news-date, link: a.more}}
    max_entries: 2
  - id: dortmund
    title: Stadt Dortmund
    url: {origin.url("/dortmund.rss")}
    max_entries: 1
  - id: muelheim
    title: Stadt Mülheim an der Ruhr
    url: {origin.url("/muelheim.atom")}
  - id: leer
    title: Noch nichts
    url: {origin.url("/leer.rss")}
""",
        "feeds:\n  - id: ruhr\n    title: Ruhrgebiet\n    max_entries: 2\n"
        "    sources: [herne, dortmund, muelheim, leer]\n",
        top="title: Integration im Ruhrgebiet\n",
        defaults="",
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _stored(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(folder / ".civicfeed" / "state.db") as db:
        return {
            "pages": db.execute(
                "SELECT feed_id, number, stories FROM archive_pages ORDER BY 1, 2"
            ).fetchall(),
            "totals": db.execute("SELECT * FROM feed_summaries ORDER BY 1").fetchall(),
            "digests": db.execute("SELECT * FROM published ORDER BY 1").fetchall(),
        }


@pytest.fixture
def cities(origin: Origin) -> Origin:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    origin.serve_fixture("/muelheim.atom", "muelheim.atom", content_type="application/atom+xml")
    origin.set(
        "/leer.rss",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Leer</title></channel></rss>',
        content_type="application/rss+xml",
    )
    return origin


def test_feeds_rendered_by_the_workers_are_the_ones_rendered_here(
    cities: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICFEED_NOW", NOW)
    alone = _config(cities, tmp_path / "alone")
    assert main(["refresh", "--config", str(alone)]) == 1  # leer: no usable items
    monkeypatch.setattr(publish, "POOLED_FROM", 1)  # every source's feed goes to the workers
    here: list[str] = []
    original = Publisher._publish_feed

    def in_this_process(self: Publisher, store: Store, spec: FeedSpec, *args: Any) -> Any:
        here.append(spec.info.id)
        return original(self, store, spec, *args)

    monkeypatch.setattr(Publisher, "_publish_feed", in_this_process)
    pooled = _config(cities, tmp_path / "pooled")
    assert main(["refresh", "--config", str(pooled)]) == 1
    assert here == ["ruhr"]  # the aggregate; the feeds of the sources in the workers

    expected = _files(tmp_path / "alone" / "feeds")
    assert "archive/herne/1.atom" in expected  # pages completed (and stored) by the workers
    assert "archive/dortmund/1.rss" in expected
    assert "leer.rss" not in expected  # waiting for its first fetch
    assert _files(tmp_path / "pooled" / "feeds") == expected
    stored = _stored(tmp_path / "pooled")
    assert stored == _stored(tmp_path / "alone")
    assert {row[0] for row in stored["pages"]} >= {"herne", "dortmund", "ruhr"}

    # everything the workers wrote is recorded: publishing again changes nothing
    (tmp_path / "pooled" / "feeds" / "herne.atom").unlink()
    store = open_store(tmp_path / "pooled" / ".civicfeed" / "state.db")
    try:
        report = Publisher(load_config(pooled)).publish(store)
    finally:
        store.close()
    assert (report.written, report.errors) == (("herne.atom",), ())
    assert _files(tmp_path / "pooled" / "feeds") == expected
    assert _stored(tmp_path / "pooled") == stored


def test_a_worker_unpickles_the_configuration_once_per_publish(
    cities: Origin, tmp_path: Path
) -> None:
    config = load_config(_config(cities, tmp_path / "site"))
    pickled = pickle.dumps(config)
    first = publish._config_of(("a", pickled))
    assert first == config
    assert publish._config_of(("a", pickled)) is first  # the same publish: kept
    assert publish._config_of(("b", pickled)) is not first  # another one: read again


def test_a_spec_sent_to_a_worker_comes_back_as_made(cities: Origin, tmp_path: Path) -> None:
    config = load_config(_config(cities, tmp_path / "site"))
    for spec in publish.feed_specs(config):
        sent = pickle.loads(pickle.dumps(publish._portable(spec)))
        assert publish._settled(sent) == spec
        assert repr(publish._settled(sent)) == repr(spec)  # what its digest is made from
