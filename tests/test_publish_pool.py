"""The feeds of many sources, and the archive pages of a feed, rendered in the worker processes
write the same bytes, store the same archive pages, totals and digests, as rendered by the
publishing process alone."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import tempfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from pebble import ProcessExpired

from civicfeed import publish, work
from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.publish import FeedSpec, Publisher
from civicfeed.store import Store, open_store
from conftest import write_sources
from origin import Origin

NOW = "2026-03-01T08:00:00+00:00"


def _config(origin: Origin, folder: Path, per_page: int = 2) -> Path:
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
        f"feeds:\n  - id: ruhr\n    title: Ruhrgebiet\n    max_entries: {per_page}\n"
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


def _published_again(config_path: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file removed and published again from the state (its archive pages frozen)."""
    folder = config_path.parent
    shutil.rmtree(folder / "feeds")
    store = open_store(folder / ".civicfeed" / "state.db")
    try:
        report = Publisher(load_config(config_path)).publish(store)
    finally:
        store.close()
    assert report.errors == ()
    return _files(folder / "feeds"), _stored(folder)


@pytest.mark.parametrize("taken_here", [True, False], ids=["shared", "all-in-workers"])
def test_archive_pages_rendered_by_the_workers_are_the_ones_rendered_here(
    cities: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_here: bool
) -> None:
    monkeypatch.setenv("CIVICFEED_NOW", NOW)
    monkeypatch.setattr(publish, "POOLED_PAGES_FROM", 10**6)  # rendered here alone
    alone = _config(cities, tmp_path / "alone", per_page=1)
    assert main(["refresh", "--config", str(alone)]) == 1
    fresh_files, fresh_stored = _files(tmp_path / "alone" / "feeds"), _stored(tmp_path / "alone")
    frozen = _published_again(alone)
    pages = [n for n in fresh_files if n.startswith("archive/ruhr/") and n.endswith(".rss")]
    assert len(pages) >= 4  # jobs of 2 pages below, several of them

    monkeypatch.setattr(publish, "POOLED_PAGES_FROM", 1)
    monkeypatch.setattr(publish, "_PAGES_PER_JOB", 2)
    claims = tmp_path / "tmp"  # this publish's claims, apart from any other process's
    claims.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(claims))
    made: list[str] = []
    original_claim = publish._claim

    def claimed(path: str) -> bool:
        made.append(path)
        return original_claim(path)

    if taken_here:
        monkeypatch.setattr(publish, "_claim", claimed)
    if not taken_here:  # this process claims no job: the workers render every page
        monkeypatch.setattr(publish, "_claim", lambda path: False)
    here: list[tuple[str, int]] = []
    original = Publisher._render

    def in_this_process(
        self: Publisher, spec: FeedSpec, current: Any, pages: int, page_of: Any, numbers: Any
    ) -> Any:
        numbers = list(numbers)
        here.extend((spec.info.id, number) for number in numbers)
        return original(self, spec, current, pages, page_of, numbers)

    monkeypatch.setattr(Publisher, "_render", in_this_process)
    pooled = _config(cities, tmp_path / "pooled", per_page=1)
    assert main(["refresh", "--config", str(pooled)]) == 1  # the ruhr pages are fresh
    if not taken_here:
        assert here == []
    assert _files(tmp_path / "pooled" / "feeds") == fresh_files
    assert _stored(tmp_path / "pooled") == fresh_stored
    here.clear()
    assert _published_again(pooled) == frozen  # the pages as stored before
    if not taken_here:
        assert here == []
    # the claims were made in the folder watched here, and none is left behind
    assert not taken_here or (all(path.startswith(str(claims)) for path in made) and made)
    assert list(claims.iterdir()) == []


def test_archive_pages_of_a_job_that_failed_are_rendered_here(
    cities: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICFEED_NOW", NOW)
    monkeypatch.setattr(publish, "POOLED_PAGES_FROM", 10**6)
    alone = _config(cities, tmp_path / "alone")
    assert main(["refresh", "--config", str(alone)]) == 1
    expected = _files(tmp_path / "alone" / "feeds"), _stored(tmp_path / "alone")

    monkeypatch.setattr(publish, "POOLED_PAGES_FROM", 1)
    monkeypatch.setattr(publish, "_PAGES_PER_JOB", 2)
    monkeypatch.setattr(publish, "_claim", lambda path: False)  # every job in a worker

    def dying(function: Any, *args: Any, seconds: float) -> Future[Any]:
        failed: Future[Any] = Future()
        failed.set_exception(ProcessExpired("Abnormal termination", code=-9))
        return failed

    monkeypatch.setattr(work, "schedule", dying)
    pooled = _config(cities, tmp_path / "pooled")
    assert main(["refresh", "--config", str(pooled)]) == 1
    assert (_files(tmp_path / "pooled" / "feeds"), _stored(tmp_path / "pooled")) == expected


def test_a_job_of_archive_pages_is_done_once(
    cities: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICFEED_NOW", NOW)
    path = _config(cities, tmp_path / "site")
    assert main(["refresh", "--config", str(path)]) == 1
    config = load_config(path)
    spec = next(spec for spec in publish.feed_specs(config) if spec.info.id == "ruhr")
    pickled = pickle.dumps(publish._portable(spec))
    sent = ("ruhr", pickled)
    settings = ("site", pickle.dumps(config))
    names = ["archive/ruhr/2.rss", "archive/ruhr/2.atom", "archive/ruhr/3.rss"]
    pages = len(list((tmp_path / "site" / "feeds" / "archive" / "ruhr").glob("*.rss")))
    expected = {name: (tmp_path / "site" / "feeds" / name).read_bytes() for name in names}
    for name in names:
        (tmp_path / "site" / "feeds" / name).unlink()
    claim = tmp_path / "claims" / "0"
    claim.parent.mkdir()
    done = publish._pages_in_worker(settings, sent, [2, 3], pages, str(claim))
    assert done == (names, [])  # archive/ruhr/3.atom was there already, as rendered
    assert {name: (tmp_path / "site" / "feeds" / name).read_bytes() for name in names} == expected
    (tmp_path / "site" / "feeds" / names[0]).unlink()
    assert publish._pages_in_worker(settings, sent, [2, 3], pages, str(claim)) is None  # taken
    assert not (tmp_path / "site" / "feeds" / names[0]).exists()
    gone = tmp_path / "over" / "0"  # the publish that made the job has ended
    assert publish._pages_in_worker(settings, sent, [2], pages, str(gone)) is None
