"""The proof of issue 11 with real processes: a real PostgreSQL server, a loopback origin of 200
sources (feeds and HTML listings, benchmarks/documents.py) on 127.0.0.2 to 127.0.0.9 that
counts requests per path, and civicfeed run as processes of their own.

Every run is at a frozen time (CIVICFEED_NOW), so that runs over the same origin can be
compared byte for byte: the entries (by source, guid or link, title and date) and every file
written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path

import pytest

from benchmarks import pgserver
from benchmarks.documents import sources, write_civicfeed_config
from benchmarks.origin import OriginProcess
from civicfeed.store import open_store

SOURCES = 200
ADDRESSES = 8  # 127.0.0.2 .. 127.0.0.9
FIRST_ADDRESS = 2
LATENCY = 0.1  # seconds before every answer
ROOT = Path(__file__).parents[1]
T1 = "2026-03-02T07:00:00+00:00"  # the first period
T2 = "2026-03-03T07:00:00+00:00"  # a day later: every source is due again

EntryKey = tuple[str, str, str, str]  # source, guid or link, title, date


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginProcess]:
    with OriginProcess(
        SOURCES, addresses=ADDRESSES, latency=LATENCY, first_address=FIRST_ADDRESS
    ) as server:
        yield server


def write_config(folder: Path, origin: OriginProcess, state: str) -> Path:
    """The 200 sources and their aggregate, kept in ``state``."""
    return write_civicfeed_config(
        folder,
        origin.url,
        sources(SOURCES, ADDRESSES, FIRST_ADDRESS),
        per_host=2,
        concurrency=None,
        timeout=20,
        state=state,
    )


def civicfeed(*args: str, now: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m civicfeed ARGS`` at the frozen time ``now``; no traceback allowed."""
    done = subprocess.run(
        [sys.executable, "-m", "civicfeed", *args],
        cwd=ROOT,
        env={**os.environ, "CIVICFEED_NOW": now},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def entries(state: str, source_ids: list[str]) -> Counter[EntryKey]:
    """Every stored entry as (source, guid or link, title, date), counted: a count above one
    is a duplicate."""
    with closing(open_store(state)) as store:
        return Counter(
            (e.source_id, e.guid or e.link or "", e.title, e.published.isoformat())
            for e in store.entries(source_ids)
        )


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def differences(one: Mapping[str, bytes], other: Mapping[str, bytes]) -> list[str]:
    """The names missing on either side or with other bytes (empty when the trees are equal)."""
    return sorted(name for name in one.keys() | other.keys() if one.get(name) != other.get(name))


def fetched_once(counts: Mapping[str, int]) -> list[str]:
    """What is wrong with the origin's requests per path for one period: every source's path
    requested exactly once, nothing else."""
    wanted = {source.path for source in sources(SOURCES, ADDRESSES, FIRST_ADDRESS)}
    wrong = [f"{path}: {counts.get(path, 0)} requests" for path in wanted if counts.get(path) != 1]
    wrong += [f"{path}: not a source" for path in counts if path not in wanted]
    return sorted(wrong)


def refresh_once(folder: Path, origin: OriginProcess, state: str, now: str) -> dict[str, bytes]:
    """``civicfeed refresh`` of the 200 sources into ``state`` at ``now``; every source's path
    requested once; the files it wrote."""
    config = write_config(folder, origin, state)
    origin.paths()  # counted from here
    done = civicfeed("refresh", "--quiet", "--config", str(config), now=now)
    assert done.returncode == 0, done.stderr
    assert fetched_once(origin.paths()) == []
    return tree(folder / "feeds")


def test_two_single_process_refreshes_of_200_sources_write_the_same_entries_and_bytes(
    origin: OriginProcess, postgres_server: str, tmp_path: Path
) -> None:
    """The baseline the workers are compared with is itself reproducible: two processes over
    the same origin at the same frozen times, each into a database of its own, store the same
    entries and write the same files, in a first period and in one with 10 % changed."""
    ids = [source.id for source in sources(SOURCES, ADDRESSES, FIRST_ADDRESS)]
    with pgserver.database(postgres_server) as one, pgserver.database(postgres_server) as two:
        first = [
            refresh_once(tmp_path / name, origin, url, T1) for name, url in (("a", one), ("b", two))
        ]
        origin.change(10)
        second = [
            refresh_once(tmp_path / name, origin, url, T2) for name, url in (("a", one), ("b", two))
        ]
        for written in (first, second):
            assert "alle.rss" in written[0]
            assert differences(*written) == []
        stored = [entries(url, ids) for url in (one, two)]
    assert stored[0] == stored[1]
    assert max(stored[0].values()) == 1  # no duplicate
    assert {key[0] for key in stored[0]} == set(ids)  # every source has entries
