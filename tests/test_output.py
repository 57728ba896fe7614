"""The Output protocol (write.py) on both backends, the folder and the state database (on a
SQLite file and a real PostgreSQL server): the same answers to the same calls; and a publish
into the database stored in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from civicfeed.config import load_config
from civicfeed.publish import Publisher
from civicfeed.store import Store, open_store
from civicfeed.write import FolderOutput, Output, StoreOutput
from origin import Origin


@pytest.fixture(params=["folder", "sqlite", "postgresql"])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Output, Store]]:
    """An output and a state beside it; for the database outputs, the output's own state."""
    if request.param == "postgresql":
        state = str(request.getfixturevalue("postgres_url"))
    else:
        state = f"sqlite://{tmp_path}/state.db"
    with closing(open_store(state)) as store:
        if request.param == "folder":
            yield FolderOutput(tmp_path / "feeds"), store
        else:
            yield StoreOutput(store), store


def test_a_file_is_put_when_its_bytes_change_and_keeps_its_time_otherwise(
    made: tuple[Output, Store],
) -> None:
    output, _ = made
    output.begin()
    assert not output.exists("herne.rss")
    assert output.modified("herne.rss") is None
    assert output.read("herne.rss") is None
    assert output.put("herne.rss", b"<rss>1</rss>")
    assert output.put("archive/herne/1.atom", b"<feed/>")
    output.flush()
    output.begin()  # the next publish
    when = output.modified("herne.rss")
    assert when is not None
    assert not output.put("herne.rss", b"<rss>1</rss>")  # the same bytes: nothing to do
    output.flush()
    output.begin()
    assert output.modified("herne.rss") == when
    read = output.read("herne.rss")
    assert read is not None
    assert (read.data, read.media_type) == (b"<rss>1</rss>", "application/rss+xml; charset=utf-8")
    assert output.put("herne.rss", b"<rss>2</rss>")
    output.flush()
    output.begin()
    again = output.read("herne.rss")
    assert again is not None
    assert again.data == b"<rss>2</rss>"
    assert again.etag != read.etag
    assert output.names() == ["archive/herne/1.atom", "herne.rss"]


def test_removing_a_feed_deletes_its_files_and_archive_pages_only(
    made: tuple[Output, Store],
) -> None:
    output, _ = made
    output.begin()
    names = [
        "herne.rss",
        "herne.atom",
        "herne.json",
        "herne.html",
        "archive/herne/1.rss",
        "herne-ost.rss",
        "archive/herne-ost/1.rss",
        "index.html",
    ]
    for name in names:
        output.put(name, name.encode())
    output.flush()
    output.begin()
    output.remove_feed("herne")
    assert output.names() == ["archive/herne-ost/1.rss", "herne-ost.rss", "index.html"]
    output.begin()
    assert output.names() == ["archive/herne-ost/1.rss", "herne-ost.rss", "index.html"]


def test_the_database_holds_a_publish_only_once_it_is_flushed(tmp_path: Path) -> None:
    state = f"sqlite://{tmp_path}/state.db"
    with closing(open_store(state)) as store, closing(open_store(state, read_only=True)) as other:
        output = StoreOutput(store)
        output.begin()
        output.put("a.rss", b"a")
        output.put("b.rss", b"b")
        assert output.exists("a.rss")  # the publisher sees its own files at once
        assert other.output_files() == []  # a server sees none of them yet
        output.flush()
        assert [f.name for f in other.output_files()] == ["a.rss", "b.rss"]


class _Counting:
    """A store that counts its save_outputs calls (every other call goes to the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[int] = []

    def save_outputs(self, files: object, removed: object = ()) -> None:
        self.calls.append(len(files))  # type: ignore[arg-type]
        self.store.save_outputs(files, removed)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_a_publish_into_the_database_is_one_transaction(
    origin: Origin, project: Callable[..., Path], tmp_path: Path, postgres_url: str
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss")
    config = load_config(
        project(
            f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
            f"    max_entries: 2\n"
            f"  - id: dortmund\n    title: Dortmund\n    url: {origin.url('/dortmund.rss')}\n",
            "feeds:\n  - id: ruhr\n    title: Ruhr\n    sources: [herne, dortmund]\n",
            top=f"state: {postgres_url}\n",
        )
    )
    from civicfeed.cli import main

    assert main(["refresh", "--config", str(config.path), "-q"]) == 0
    with closing(open_store(config.state)) as store:
        store.save_outputs([], [f.name for f in store.output_files()])  # publish it all again
        for feed in ("herne", "dortmund", "ruhr"):
            store.save_published_digest(feed, "")
        counting = _Counting(store)
        report = Publisher(config).publish(counting)  # type: ignore[arg-type]
        assert report.errors == ()
        stored = [f.name for f in store.output_files()]
    assert counting.calls == [len(stored)]  # every file of the publish in one call
    assert sorted(report.written) == stored
    assert "archive/herne/1.atom" in stored
    assert not (tmp_path / "feeds").exists()
