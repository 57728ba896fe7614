"""Operations: a refresh killed at any moment, and refreshes that overlap."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import write_sources
from feedcheck import check_atom, check_rss, rss_items
from origin import Origin

SOURCES = 12
ITEMS = 150
RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


def listing(source: int, version: int) -> bytes:
    """A listing of ITEMS items; each version adds ten new ones on top."""
    rows = []
    for n in range(ITEMS + 10 * version, 0, -1):
        day = 1 + n % 28
        rows.append(
            f'<li class="item"><span class="date">{day}.{1 + n // 28 % 12}.2019</span>'
            f'<a href="/s{source}/m{n}.html">Meldung {n} aus Stadt {source}</a></li>'
        )
    return ("<html><body><ul>" + "".join(rows) + "</ul></body></html>").encode()


def slow(body: bytes, seconds: float):  # type: ignore[no-untyped-def]
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        step = max(1, len(body) // 10)
        for start in range(0, len(body), step):
            handler.wfile.write(body[start : start + step])
            handler.wfile.flush()
            if RELEASE.wait(seconds / 10):
                return

    return answer


def write_config(origin: Origin, folder: Path) -> Path:
    sources = "".join(
        f"  - id: stadt-{s}\n    title: Stadt {s}\n    url: {origin.url(f'/s{s}/')}\n"
        "    tags: [alle]\n    html: {item: li.item, date: .date}\n"
        for s in range(SOURCES)
    )
    aggregate = "feeds:\n  - id: alle\n    title: Alle\n    tags: [alle]\n    max_entries: 2000\n"
    return write_sources(folder, sources, aggregate, defaults="  timeout: 20s\n", base_url=None)


def serve(origin: Origin, version: int, slow_seconds: float = 0.0) -> None:
    for s in range(SOURCES):
        body = listing(s, version)
        if slow_seconds and s % 4 == 0:
            origin.routes[f"/s{s}/"] = slow(body, slow_seconds)
        else:
            origin.set(f"/s{s}/", body, etag=False)


def run(
    config: Path, *args: str, wait: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    command = [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config), *args]
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_whole(folder: Path) -> None:
    feeds = folder / "feeds"
    for s in range(SOURCES):
        check_rss(feeds / f"stadt-{s}.rss")
        check_atom(feeds / f"stadt-{s}.atom")
    check_rss(feeds / "alle.rss")
    check_atom(feeds / "alle.atom")
    with sqlite3.connect(folder / ".civicfeed" / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# (result lines printed, then seconds): kill while fetching, while sources are being stored,
# and after the last source, while the feeds are being rendered and written
MOMENTS = (
    (0, 0.3),
    (1, 0.0),
    (4, 0.05),
    (8, 0.0),
    (SOURCES, 0.0),
    (SOURCES, 0.03),
    (SOURCES, 0.08),
)


def test_sigkill_at_any_moment_loses_nothing(origin: Origin, tmp_path: Path) -> None:
    moments = MOMENTS
    config = write_config(origin, tmp_path)
    serve(origin, version=0)
    first = run(config)
    assert isinstance(first, subprocess.CompletedProcess)
    assert first.returncode == 0, first.stderr
    assert_whole(tmp_path)

    for number, (lines, delay) in enumerate(moments, start=1):
        serve(origin, version=number, slow_seconds=1.0)
        process = run(config, wait=False)
        assert isinstance(process, subprocess.Popen)
        assert process.stdout is not None
        for _ in range(lines):
            process.stdout.readline()
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        RELEASE.set()  # let the slow handlers of the killed run go
        time.sleep(0.05)
        RELEASE.clear()
        assert_whole(tmp_path)  # the previous or the new version of every file, never a mix

    serve(origin, version=len(moments))
    last = run(config)
    assert isinstance(last, subprocess.CompletedProcess)
    assert last.returncode == 0, last.stdout + last.stderr
    assert_whole(tmp_path)
    assert not list((tmp_path / "feeds").glob(".*.tmp"))
    expected = ITEMS + 10 * len(moments)
    with sqlite3.connect(tmp_path / ".civicfeed" / "state.db") as db:
        counts = db.execute(
            "SELECT source_id, COUNT(*), COUNT(DISTINCT link) FROM entries GROUP BY source_id"
        ).fetchall()
    assert len(counts) == SOURCES
    assert all(total == distinct == expected for _, total, distinct in counts), counts
    items = rss_items(tmp_path / "feeds" / "alle.rss")
    assert len(items) == min(2000, SOURCES * expected)
    assert len({i["guid"] for i in items}) == len(items)


def hanging(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "50000")
    handler.end_headers()
    RELEASE.wait(30)
    handler.close_connection = True  # the client sees the body cut short at once


def start_holder(origin: Origin, tmp_path: Path) -> tuple[Path, subprocess.Popen[str]]:
    config = write_config(origin, tmp_path)
    serve(origin, version=0)
    origin.routes["/s0/"] = hanging  # holds the first refresh until its timeout
    holder = run(config, wait=False)
    assert isinstance(holder, subprocess.Popen)
    lock = tmp_path / ".civicfeed" / "state.db.lock"
    deadline = time.monotonic() + 30
    while not origin.hits("/s0/"):
        assert time.monotonic() < deadline, "the first refresh never started"
        time.sleep(0.05)
    assert lock.read_text().strip() == str(holder.pid)
    return config, holder


def test_second_refresh_gives_up_after_wait_with_exit_3(origin: Origin, tmp_path: Path) -> None:
    config, holder = start_holder(origin, tmp_path)
    try:
        second = run(config, "--wait", "1s")
        assert isinstance(second, subprocess.CompletedProcess)
        assert second.returncode == 3
        assert f"process {holder.pid}" in second.stderr
        assert "still running after 1s" in second.stderr
        assert "Traceback" not in second.stderr
        # it waited (it said so, then tried again until its time was up) and gave up while the
        # first still ran and held the lock
        waited = second.stderr.find("waiting for another refresh")
        assert 0 <= waited < second.stderr.index("still running after 1s")
        assert holder.poll() is None
        assert (tmp_path / ".civicfeed" / "state.db.lock").read_text().strip() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


def test_second_refresh_waits_for_the_first_then_runs(origin: Origin, tmp_path: Path) -> None:
    config, holder = start_holder(origin, tmp_path)
    second = run(config, "--wait", "2m", wait=False)
    assert isinstance(second, subprocess.Popen)
    time.sleep(1.0)
    assert second.poll() is None  # still waiting
    serve(origin, version=0)  # the second refresh will find a working origin
    RELEASE.set()  # the first refresh can finish now
    out, err = second.communicate(timeout=60)
    holder.wait(timeout=60)
    assert "waiting for another refresh" in err
    assert second.returncode == 0, out + err


def test_lock_of_a_killed_refresh_is_released(origin: Origin, tmp_path: Path) -> None:
    config, holder = start_holder(origin, tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    RELEASE.set()
    serve(origin, version=0)
    after = run(config, "--wait", "5s")
    assert isinstance(after, subprocess.CompletedProcess)
    assert after.returncode == 0, after.stderr
    assert "waiting" not in after.stderr
