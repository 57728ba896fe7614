"""`civicfeed run --worker`: worker processes on a PostgreSQL state sharing the refreshes
through its job queue (real PostgreSQL, real processes, a loopback origin)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from civicfeed.cli import main
from civicfeed.store import open_store
from conftest import write_sources
from origin import FIXTURES, Origin
from test_service import Process

FEED = (FIXTURES / "dortmund-cp1252.rss").read_bytes()


def _worker(config: Path, *extra: str) -> Process:
    return Process("run", "--worker", "--config", str(config), "--stalled-after", "4s", *extra)


@pytest.fixture
def workers() -> Iterator[list[Process]]:
    """The worker processes a test starts, killed after it if still running."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(0.2)


def _succeeded(url: str) -> set[str]:
    with closing(open_store(url, read_only=True)) as store:
        return {sid for sid, state in store.source_states().items() if state.last_success}


def _setup_two_sources(origin: Origin, folder: Path, top: str) -> Path:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.set("/dortmund.rss", FEED, content_type="application/rss+xml")
    return write_sources(
        folder,
        f"  - id: herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
        f"  - id: dortmund\n    url: {origin.url('/dortmund.rss')}\n",
        "feeds:\n  - id: ruhr\n    title: Ruhr\n    sources: [herne, dortmund]\n",
        top=top,
    )


def test_a_worker_refreshes_publishes_into_the_database_and_stops_on_sigterm(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    """A worker process refreshes the sources from the origin, publishes the feeds into the
    state database (publish_to: database, the default) and serves them (--serve)."""
    config = _setup_two_sources(origin, tmp_path, f"state: {postgres_url}\n")
    worker = _worker(config, "--serve", "127.0.0.1:0")
    workers.append(worker)
    port = worker.port()
    site = f"http://127.0.0.1:{port}"

    def published() -> bool:
        names = ["herne.rss", "dortmund.atom", "ruhr.rss", "ruhr.json", "feeds.opml"]
        if any(httpx.get(f"{site}/{name}", timeout=10).status_code != 200 for name in names):
            return False
        index = httpx.get(f"{site}/", timeout=10)
        return index.status_code == 200 and "Ruhr" in index.text and "Dortmund" in index.text

    _wait(published, "the feeds and the index served from the database")
    assert _succeeded(postgres_url) == {"herne", "dortmund"}
    assert httpx.get(f"{site}/ruhr.rss", timeout=10).text.count("<item>") >= 2
    assert not (tmp_path / "feeds").exists()  # nothing in the folder
    assert len(origin.hits("/herne/")) == 1  # due again only after its `every` (1 h)
    assert len(origin.hits("/dortmund.rss")) == 1
    code, _ = worker.stop()
    assert code == 0
    time.sleep(0.2)  # the pump reads the last lines
    assert any("civicfeed worker stopped" in line for line in _lines(worker))
    assert not any("Traceback" in line for line in _lines(worker))


def test_a_worker_publishing_to_a_folder_writes_the_feeds_there(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    config = _setup_two_sources(
        origin, tmp_path, f"state: {postgres_url}\npublish_to: folder\noutput: out\n"
    )
    workers.append(_worker(config))
    out = tmp_path / "out"
    names = ["herne.rss", "dortmund.atom", "ruhr.rss", "ruhr.json", "index.html", "feeds.opml"]
    _wait(lambda: all((out / name).is_file() for name in names), "the feeds and the index")
    _wait(lambda: b"Dortmund" in (out / "index.html").read_bytes(), "the index of every feed")
    assert (out / "ruhr.rss").read_bytes().count(b"<item>") >= 2
    assert workers[0].stop()[0] == 0


def _lines(process: Process) -> list[str]:
    """Every line the process wrote so far."""
    while not process.lines.empty():
        process.seen.append(process.lines.get())
    return process.seen


def test_the_worker_block_sets_stalled_after_and_a_mistake_in_it_is_a_config_error(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    top = f"state: {postgres_url}\nworker:\n  stalled_after: 3s\n  jobs: 2\n"
    config = _setup_two_sources(origin, tmp_path, top)
    worker = Process("run", "--worker", "--config", str(config))
    workers.append(worker)
    assert "stalled after 3s" in worker.wait_for("civicfeed worker")
    assert worker.stop()[0] == 0
    config.write_text(config.read_text().replace("stalled_after: 3s", "stalled_after: 1s"))
    mistaken = Process("run", "--worker", "--config", str(config))
    workers.append(mistaken)
    assert mistaken.popen.wait(timeout=60) == 2
    line = mistaken.wait_for("configuration error")
    assert "sources.yaml:5: worker.stalled_after:" in line, line


def test_a_worker_refuses_a_sqlite_state(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project("  - id: a\n    url: https://example.org/feed.xml\n")
    assert main(["run", "--worker", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "needs a PostgreSQL state" in err
    assert "state.db" in err
    assert "Traceback" not in err
    assert not (config.parent / ".civicfeed").exists()  # nothing was created


def test_a_refresh_is_never_queued_twice(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The queueing lock source:<id>: a second defer while one waits queues nothing; the
    queue is seen through `civicfeed worker-admin`."""
    from civicfeed.workers import _connector, app, defer_refresh

    open_store(postgres_url).close()  # migrated: the queue's tables too

    async def defer_three_times() -> list[int]:
        with app.replace_connector(_connector(postgres_url)):
            async with app.open_async():
                return [
                    await defer_refresh("herne"),
                    await defer_refresh("herne"),
                    await defer_refresh("dortmund"),
                ]

    assert asyncio.run(defer_three_times()) == [1, 0, 1]
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            "SELECT args->>'source_id', lock, queueing_lock FROM procrastinate_jobs"
            " WHERE task_name = 'refresh_source' ORDER BY id"
        ).fetchall()
    assert rows == [
        ("herne", "source:herne", "source:herne"),
        ("dortmund", "source:dortmund", "source:dortmund"),
    ]
    config = write_sources(
        tmp_path,
        "  - id: herne\n    url: https://example.org/herne\n",
        top=f"state: {postgres_url}\n",
    )
    capsys.readouterr()
    assert main(["worker-admin", "--config", str(config), "shell", "list_jobs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2, listed
    assert all("refresh_source" in line and "todo" in line for line in listed), listed
    # procrastinate's own command line, connected by the libpq environment
    parts = urlsplit(postgres_url)
    environment = {
        **os.environ,
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "",
        "PGDATABASE": parts.path.lstrip("/"),
    }
    own = subprocess.run(
        [
            sys.executable,
            "-m",
            "procrastinate",
            "--app=civicfeed.workers.app",
            "shell",
            "list_jobs",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert own.returncode == 0, own.stderr
    assert own.stdout.splitlines() == listed


def test_migrate_applies_the_queue_schema_once_and_again_changes_nothing(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_sources(
        tmp_path, "  - id: a\n    url: https://example.org/a\n", top=f"state: {postgres_url}\n"
    )
    for _ in range(2):
        assert main(["migrate", "--config", str(config)]) == 0
        assert "up to date" in capsys.readouterr().out
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url) as db:
        tables = {
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate_%'"
            )
        }
    assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_periodic_defers"} <= (
        tables
    )


class _Concurrency:
    """Requests under way at the origin, per host (the Host header), and the most seen."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.now: defaultdict[str, int] = defaultdict(int)
        self.most: defaultdict[str, int] = defaultdict(int)

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        host = (handler.headers.get("Host") or "").rsplit(":", 1)[0]
        with self.lock:
            self.now[host] += 1
            self.most[host] = max(self.most[host], self.now[host])
        try:
            time.sleep(self.delay)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml")
            handler.send_header("Content-Length", str(len(FEED)))
            handler.end_headers()
            handler.wfile.write(FEED)
        finally:
            with self.lock:
                self.now[host] -= 1


def test_per_host_holds_across_two_worker_processes(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    """per_host: 2 with two workers, each allowed 2 requests per host by itself: the leases
    in the database keep the host at 2 requests at once in all."""
    count = 24
    measure = _Concurrency(delay=0.5)
    sources = ""
    for n in range(count):
        origin.routes[f"/feed/{n}.rss"] = measure
        sources += f"  - id: s{n}\n    url: {origin.url(f'/feed/{n}.rss')}\n"
    config = write_sources(tmp_path, sources, top=f"state: {postgres_url}\nper_host: 2\n")
    open_store(postgres_url).close()  # both workers start on a migrated state
    workers.extend([_worker(config, "--jobs", "6"), _worker(config, "--jobs", "6")])
    _wait(lambda: len(_succeeded(postgres_url)) == count, "every source refreshed", 120)
    assert 1 <= measure.most["127.0.0.1"] <= 2
    for n in range(count):
        assert len(origin.hits(f"/feed/{n}.rss")) == 1
    for worker in workers:
        assert worker.stop()[0] == 0
    time.sleep(0.2)  # the pump reads the last lines
    refreshed = [[line for line in _lines(w) if "new:" in line] for w in workers]
    assert all(refreshed), "both workers refreshed sources"
    assert sum(map(len, refreshed)) == count
    assert not any("Traceback" in line for worker in workers for line in _lines(worker))


class _FirstHangs:
    """The first request hangs until released (or ``longest`` seconds); later ones answer."""

    def __init__(self, longest: float = 60) -> None:
        self.release = threading.Event()
        self.longest = longest
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.count += 1
            first = self.count == 1
        if first:
            self.release.wait(self.longest)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(FEED)))
        handler.end_headers()
        handler.wfile.write(FEED)


def _job_states(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT status::text, attempts FROM procrastinate_jobs"
            " WHERE task_name = 'refresh_source' ORDER BY id"
        ).fetchall()
    return [(str(status), int(attempts)) for status, attempts in rows]


def test_the_job_of_a_killed_worker_is_done_by_another_after_stalled_after(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    """Its job is queued again, and its lease on the host (per_host: 1), taken for a request
    that could last 2 minutes, is free again within stalled_after too."""
    hang = _FirstHangs(longest=120)
    origin.routes["/slow.rss"] = hang
    config = write_sources(
        tmp_path,
        f"  - id: slow\n    url: {origin.url('/slow.rss')}\n",
        top=f"state: {postgres_url}\nper_host: 1\n",
        defaults="  timeout: 120s\n",
    )
    try:
        first = _worker(config)
        workers.append(first)
        _wait(lambda: hang.count == 1, "the first worker's request")
        first.popen.kill()  # SIGKILL: no goodbye, its job stays "doing", its heartbeat stops
        first.popen.wait()
        assert _job_states(postgres_url) == [("doing", 0)]
        second = _worker(config)
        workers.append(second)
        _wait(lambda: _succeeded(postgres_url) == {"slow"}, "the source refreshed by the second")
    finally:
        hang.release.set()
    assert hang.count == 2
    second.wait_for("of a worker silent for 4s")
    assert second.stop()[0] == 0


def test_a_job_cut_short_by_sigterm_is_queued_again_for_the_others(
    origin: Origin, postgres_url: str, tmp_path: Path, workers: list[Process]
) -> None:
    hang = _FirstHangs()
    origin.routes["/slow.rss"] = hang
    config = write_sources(
        tmp_path,
        f"  - id: slow\n    url: {origin.url('/slow.rss')}\n",
        top=f"state: {postgres_url}\n",
        defaults="  timeout: 60s\n",
    )
    try:
        first = _worker(config)
        workers.append(first)
        _wait(lambda: hang.count == 1, "the first worker's request")
        assert first.stop()[0] == 0  # its job is abandoned after the grace period
        assert _job_states(postgres_url) == [("todo", 1)]
        assert _succeeded(postgres_url) == set()
        second = _worker(config)
        workers.append(second)
        _wait(lambda: _succeeded(postgres_url) == {"slow"}, "the source refreshed by the second")
    finally:
        hang.release.set()
    assert hang.count == 2
    assert second.stop()[0] == 0
