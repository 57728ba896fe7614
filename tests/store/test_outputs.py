"""The published files in the state (Store.output_files, output_file, save_outputs), the same
on every backend: what `publish_to: database` writes and `serve` and `export` read."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from civicfeed.errors import StoreError
from civicfeed.models import OutputFile
from civicfeed.store import Store, open_store
from civicfeed.write import etag_of, media_type
from store.builders import NOW


def _file(name: str, data: bytes, minutes: int = 0) -> OutputFile:
    return OutputFile(name, etag_of(data), NOW + timedelta(minutes=minutes), media_type(name), data)


def test_published_files_come_back_as_stored_and_are_listed_without_data(store: Store) -> None:
    assert store.output_files() == []
    assert store.output_file("herne.rss") is None
    rss = _file("herne.rss", b"<rss>\x00\xff</rss>")  # any bytes, kept exactly
    page = _file("archive/herne/1.atom", b"<feed/>", minutes=1)
    store.save_outputs([rss, page])
    assert store.output_file("herne.rss") == rss
    assert store.output_file("archive/herne/1.atom") == page
    listed = store.output_files()
    assert [f.name for f in listed] == ["archive/herne/1.atom", "herne.rss"]  # sorted
    assert all(f.data is None for f in listed)
    assert listed[1] == OutputFile("herne.rss", rss.etag, NOW, "application/rss+xml; charset=utf-8")
    assert listed[1].modified.utcoffset() == timedelta(0)


def test_a_file_stored_again_unchanged_keeps_its_time_and_a_changed_one_is_replaced(
    store: Store,
) -> None:
    store.save_outputs([_file("a.rss", b"1"), _file("b.rss", b"1")])
    store.save_outputs([_file("a.rss", b"1", minutes=5), _file("b.rss", b"2", minutes=5)])
    assert store.output_file("a.rss") == _file("a.rss", b"1")  # the same ETag: left alone
    assert store.output_file("b.rss") == _file("b.rss", b"2", minutes=5)


def test_removed_names_are_deleted_in_the_same_transaction(store: Store) -> None:
    store.save_outputs([_file("a.rss", b"a"), _file("a.atom", b"a"), _file("b.rss", b"b")])
    store.save_outputs([_file("c.rss", b"c")], ["a.rss", "a.atom", "never.rss"])
    assert [f.name for f in store.output_files()] == ["b.rss", "c.rss"]


def test_a_publish_is_stored_whole_or_not_at_all(store: Store) -> None:
    store.save_outputs([_file("a.rss", b"old")])
    broken = OutputFile("b.rss", '"x"', NOW, None, b"b")  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(StoreError):
        store.save_outputs([_file("a.rss", b"new"), broken], ["a.rss"])
    assert store.output_file("a.rss") == _file("a.rss", b"old")
    assert store.output_file("b.rss") is None


def test_a_reader_never_sees_half_a_publish(state: str) -> None:
    """A writer stores 30 publishes of 40 files each; a reader on its own connection lists
    the files all the while: every listing holds one publish's files, never a mix."""
    writer = open_store(state)
    reader = open_store(state, read_only=True)
    names = [f"feed{n}.rss" for n in range(40)]
    versions = {etag_of(str(v).encode()): v for v in range(30)}
    done = threading.Event()
    seen: list[set[int]] = []

    def read() -> None:
        while not done.is_set():
            listing = reader.output_files()
            if listing:
                assert [f.name for f in listing] == sorted(names)
                seen.append({versions[f.etag] for f in listing})

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for version in range(30):
            data = str(version).encode()
            writer.save_outputs([_file(name, data, minutes=version) for name in names])
    finally:
        done.set()
        thread.join()
        reader.close()
        writer.close()
    assert seen, "the reader never saw a publish"
    assert all(len(publish) == 1 for publish in seen), [s for s in seen if len(s) > 1]


def test_a_read_only_store_reads_the_files_and_stores_none(state: str) -> None:
    writer = open_store(state)
    writer.save_outputs([_file("a.rss", b"a")])
    reader = open_store(state, read_only=True)
    try:
        assert reader.output_file("a.rss") == _file("a.rss", b"a")
        with pytest.raises(StoreError):
            reader.save_outputs([_file("b.rss", b"b")])
        assert [f.name for f in reader.output_files()] == ["a.rss"]
    finally:
        reader.close()
        writer.close()
