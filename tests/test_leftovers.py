"""Temporary files that a killed run left behind are removed by the next run, in every folder
civicfeed writes (archive folders too); nothing else is touched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from civicfeed.cli import main
from civicfeed.write import is_temporary, write_if_changed
from origin import Origin
from test_service import Process, processes

__all__ = ["processes"]  # the fixture


def test_leftover_temporary_files_are_removed_in_every_folder(
    origin: Origin, project: Callable[..., Path]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    rules = "{item: article.news-teaser, title: h3, date: .news-date, link: a.more}"
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        f"    max_entries: 2\n    html: {rules}\n"
    )
    assert main(["refresh", "--config", str(config)]) == 0
    output = config.parent / "feeds"
    archive = output / "archive" / "herne"
    assert (archive / "2.atom").is_file()
    # what a run killed between creating and renaming its temporary files leaves
    leftovers = [output / ".herne.rss.k1x2y3.tmp", archive / ".2.atom.a8b9c0.tmp"]
    kept = [archive / "notes.tmp", archive / ".keep", output / ".well-known.tmp" / "x"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"<rss")
    assert all(is_temporary(path.name) for path in leftovers)
    assert not any(is_temporary(path.name) for path in kept)

    assert main(["refresh", "--config", str(config)]) == 0  # nothing new: nothing rendered
    assert [path for path in leftovers if path.exists()] == []
    assert all(path.exists() for path in kept)
    assert (archive / "2.atom").is_file()


def test_the_temporary_files_written_are_those_the_rule_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[str] = []
    real = os.replace

    def spy(source: str, target: Path) -> None:
        renamed.append(Path(source).name)
        real(source, target)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "archive" / "herne" / "1.atom"
    assert write_if_changed(target, b"<feed/>")
    assert len(renamed) == 1
    assert is_temporary(renamed[0])
    assert [p.name for p in target.parent.iterdir()] == ["1.atom"]


def test_the_feed_server_never_serves_a_temporary_file(
    origin: Origin, project: Callable[..., Path], processes: list[Process]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    rules = "{item: article.news-teaser, title: h3, date: .news-date, link: a.more}"
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        f"    max_entries: 2\n    html: {rules}\n"
    )
    assert main(["refresh", "--config", str(config)]) == 0
    output = config.parent / "feeds"
    # a run writing right now: its temporary files are there for a moment
    (output / ".herne.rss.k1x2y3.tmp").write_bytes(b"<rss>half")
    (output / "archive" / "herne" / ".1.atom.a8b9c0.tmp").write_bytes(b"<feed>half")
    server = Process("serve", "--config", str(config), "--listen", "127.0.0.1:0")
    processes.append(server)
    base = f"http://127.0.0.1:{server.port()}"
    assert httpx.get(f"{base}/herne.rss").status_code == 200
    assert httpx.get(f"{base}/archive/herne/1.atom").status_code == 200
    hidden = (
        ".herne.rss.k1x2y3.tmp",
        "archive/herne/.1.atom.a8b9c0.tmp",
        "%2Eherne.rss.k1x2y3.tmp",
    )
    for path in hidden:
        assert httpx.get(f"{base}/{path}").status_code == 404, path
    assert server.stop()[0] == 0


def test_each_file_is_flushed_and_each_folder_once_per_publish(
    origin: Origin, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    rules = "{item: article.news-teaser, title: h3, date: .news-date, link: a.more}"
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        f"    max_entries: 2\n    html: {rules}\n"
    )
    flushed: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    assert main(["refresh", "--config", str(config)]) == 0
    feeds = config.parent / "feeds"
    files = [p for p in feeds.rglob("*") if p.is_file()]
    folders = {str(p.parent) for p in files}
    assert len(folders) == 2  # feeds/ and feeds/archive/herne/
    written = [name for name in flushed if not os.path.isdir(name)]
    assert len(written) == len(files)  # every file, once: its temporary copy before the rename
    assert sorted(name for name in flushed if os.path.isdir(name)) == sorted(folders)


def test_a_temporary_name_left_by_a_killed_run_is_skipped_and_missing_folders_are_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicfeed import write

    monkeypatch.setattr(write, "_made", iter([7, 7, 7, 8]))  # 7: tried twice, then taken
    target = tmp_path / "archive" / "herne" / "1.atom"  # its folders are not there yet
    assert write_if_changed(target, b"<feed>1</feed>")
    leftover = target.parent / f".1.atom.{os.getpid()}-7.tmp"
    leftover.write_bytes(b"<feed>half")  # what a run with the same process id left
    assert write_if_changed(target, b"<feed>2</feed>")
    assert target.read_bytes() == b"<feed>2</feed>"
    assert leftover.read_bytes() == b"<feed>half"  # not written into, not renamed
    assert sorted(p.name for p in target.parent.iterdir()) == [leftover.name, "1.atom"]


def test_a_written_file_is_readable_by_all_whatever_the_umask(tmp_path: Path) -> None:
    before = os.umask(0o077)
    try:
        assert write_if_changed(tmp_path / "a.rss", b"<rss/>")
    finally:
        os.umask(before)
    assert (tmp_path / "a.rss").stat().st_mode & 0o777 == 0o644
