"""Temporary files that a killed run left behind are removed by the next run, in every folder
civicfeed writes (archive folders too); nothing else is touched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from civicfeed.cli import main
from civicfeed.errors import WriteError
from civicfeed.write import SYNC_WHOLE_FROM, FolderOutput, is_temporary, write_if_changed
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


class _Flushes:
    """What a batch of FolderOutput did to make its files durable: the files flushed one by
    one (by the name of the temporary file) and the whole-file-system flushes asked for."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, *, whole: int | None = 0, kind: str = "ext4"
    ) -> None:
        from civicfeed import write

        self.files: list[str] = []
        self.whole: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.files.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        def syncfs(fd: int) -> int:  # ``whole``: what the call answers (None: no such call)
            self.whole.append(os.readlink(f"/proc/self/fd/{fd}"))
            os.sync()
            assert whole is not None
            return whole

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(write, "_syncfs", lambda: None if whole is None else syncfs)
        # ``kind``: the type of the output's file system, whatever the machine's is
        monkeypatch.setattr(write, "_file_system_type", lambda major, minor: kind)


def _batch(folder: Path, count: int, text: str = "x") -> FolderOutput:
    output = FolderOutput(folder)
    output.begin()
    for number in range(count):
        assert output.put(f"archive/all/{number}.rss", f"<rss>{text}{number}</rss>".encode())
    return output


def test_a_large_batch_is_made_durable_by_one_flush_of_its_file_system_before_any_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = tmp_path / "feeds"
    _batch(feeds, SYNC_WHOLE_FROM, "old").flush()
    flushes = _Flushes(monkeypatch)
    output = _batch(feeds, SYNC_WHOLE_FROM, "new")
    folder = feeds / "archive" / "all"
    # put, not yet renamed: readers still see the old files, beside the temporary ones
    assert (folder / "0.rss").read_bytes() == b"<rss>old0</rss>"
    assert sum(is_temporary(p.name) for p in folder.iterdir()) == SYNC_WHOLE_FROM
    assert flushes.whole == []
    output.flush()
    assert flushes.whole == [str(feeds)]  # once, for all of them
    assert flushes.files == [str(folder)]  # no file one by one; the folder once
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{n}.rss" for n in range(SYNC_WHOLE_FROM)
    )
    assert (folder / "7.rss").read_bytes() == b"<rss>new7</rss>"


@pytest.mark.parametrize(
    ("whole", "kind"),
    [(None, "ext4"), (-1, "ext4"), (0, "nfs4"), (0, "fuse.sshfs")],
    ids=["no such call", "the call fails", "a network file system", "a FUSE file system"],
)
def test_without_a_whole_flush_each_file_of_a_batch_is_flushed_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: int | None, kind: str
) -> None:
    flushes = _Flushes(monkeypatch, whole=whole, kind=kind)
    output = _batch(tmp_path / "feeds", SYNC_WHOLE_FROM + 3)
    output.flush()
    folder = tmp_path / "feeds" / "archive" / "all"
    files = [name for name in flushes.files if not os.path.isdir(name)]
    assert len(files) == SYNC_WHOLE_FROM + 3
    assert all(is_temporary(Path(name).name) for name in files)  # before its rename
    assert flushes.files[-1] == str(folder)
    assert len(list(folder.iterdir())) == SYNC_WHOLE_FROM + 3
    assert flushes.whole == ([str(tmp_path / "feeds")] if whole == -1 else [])


def test_the_type_of_a_folders_file_system_is_read_from_the_kernels_list_of_mounts() -> None:
    from civicfeed import write

    device = os.stat("/proc").st_dev  # procfs: mounted on every Linux system
    assert write._file_system_type(os.major(device), os.minor(device)) == "proc"
    assert write._file_system_type(4095, 1048575) is None  # no such device


def test_a_small_batch_flushes_its_files_one_by_one_not_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = _Flushes(monkeypatch)
    _batch(tmp_path / "feeds", SYNC_WHOLE_FROM - 1).flush()
    assert flushes.whole == []
    assert len([name for name in flushes.files if not os.path.isdir(name)]) == SYNC_WHOLE_FROM - 1


def test_a_name_put_twice_or_asked_about_in_a_batch_is_settled_first(tmp_path: Path) -> None:
    output = FolderOutput(tmp_path / "feeds")
    output.begin()
    assert output.put("index.html", b"<p>1</p>")
    assert output.exists("index.html")  # what was put is there for the publish itself
    assert not output.put("index.html", b"<p>1</p>")  # the same bytes as the first put
    assert output.put("index.html", b"<p>2</p>")
    read = output.read("index.html")
    assert read is not None
    assert read.data == b"<p>2</p>"
    assert output.put("herne.rss", b"<rss/>")
    assert output.names() == ["herne.rss", "index.html"]
    output.flush()
    assert [p.name for p in (tmp_path / "feeds").iterdir() if is_temporary(p.name)] == []


def test_a_file_that_cannot_be_renamed_fails_alone_and_the_batch_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Flushes(monkeypatch)
    feeds = tmp_path / "feeds"
    output = _batch(feeds, SYNC_WHOLE_FROM)
    blocked = feeds / "archive" / "all" / "3.rss"
    blocked.mkdir()  # a folder where the file should go, made after it was put
    (blocked / "keep").write_bytes(b"")
    with pytest.raises(WriteError, match=r"cannot write .*/archive/all/3\.rss"):
        output.flush()
    folder = feeds / "archive" / "all"
    assert (folder / "4.rss").read_bytes() == b"<rss>x4</rss>"
    assert blocked.is_dir()
    assert [p.name for p in folder.iterdir() if is_temporary(p.name)] == []
    assert len([p for p in folder.iterdir() if p.is_file()]) == SYNC_WHOLE_FROM - 1
