"""The proof of issue 11 with real processes: a real PostgreSQL server, a loopback origin of 200
sources (feeds and HTML listings, benchmarks/documents.py) on 127.0.0.2 to 127.0.0.9 that
counts requests per path, and civicfeed run as processes of their own.

Every run is at a frozen time (CIVICFEED_NOW), so that runs over the same origin can be
compared byte for byte: the entries (by source, guid or link, title and date) and every file
written.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks import pgserver
from benchmarks.documents import sources, write_civicfeed_config
from benchmarks.origin import OriginProcess
from benchmarks.progress import attempted, pending
from civicfeed.store import open_store
from civicfeed.store.records import iso
from figures import record

SOURCES = 200
ADDRESSES = 8  # 127.0.0.2 .. 127.0.0.9
FIRST_ADDRESS = 2
LATENCY = 0.1  # seconds before every answer
ROOT = Path(__file__).parents[1]
T1 = "2026-03-02T07:00:00+00:00"  # the first period
T2 = "2026-03-03T07:00:00+00:00"  # a day later: every source is due again
STALLED_AFTER = 4  # seconds without a heartbeat before a worker's jobs go to the others
JOBS = 8  # jobs a worker runs at once

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


def archived(written: Mapping[str, bytes], feed: str) -> Counter[str]:
    """The guids on the archive pages of ``feed`` (RSS), counted."""
    pages = [name for name in written if name.startswith(f"archive/{feed}/")]
    return Counter(
        guid
        for name in pages
        if name.endswith(".rss")
        for guid in re.findall(rb"<guid[^>]*>([^<]+)</guid>", written[name])
    )


def fetched_once(counts: Mapping[str, int]) -> list[str]:
    """What is wrong with the origin's requests per path for one period: every source's path
    requested exactly once, nothing else."""
    wanted = {source.path for source in sources(SOURCES, ADDRESSES, FIRST_ADDRESS)}
    wrong = [f"{path}: {counts.get(path, 0)} requests" for path in wanted if counts.get(path) != 1]
    wrong += [f"{path}: not a source" for path in counts if path not in wanted]
    return sorted(wrong)


def exported(config: Path, into: Path) -> dict[str, bytes]:
    """What the state of ``config`` publishes, written out by ``civicfeed export``."""
    done = civicfeed("export", str(into), "--config", str(config), now=T1)
    assert done.returncode == 0, done.stderr
    return tree(into)


def refresh_once(folder: Path, origin: OriginProcess, state: str, now: str) -> dict[str, bytes]:
    """``civicfeed refresh`` of the 200 sources into ``state`` at ``now``; every source's path
    requested once; the files it published."""
    config = write_config(folder, origin, state)
    origin.paths()  # counted from here
    done = civicfeed("refresh", "--quiet", "--config", str(config), now=now)
    assert done.returncode == 0, done.stderr
    assert fetched_once(origin.paths()) == []
    return exported(config, folder / f"export-{now[:10]}")


class Workers:
    """``civicfeed run --worker`` processes at a frozen time, each in a process group of its
    own (its parsing workers with it), their output in a log file each."""

    def __init__(self, config: Path, now: str, count: int, logs: Path) -> None:
        self.logs = [logs / f"worker-{now[:10]}-{k}.log" for k in range(count)]
        self.processes = []
        for log in self.logs:
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "civicfeed", "run", "--worker", "--config",
                         str(config), f"--stalled-after={STALLED_AFTER}s", f"--jobs={JOBS}",
                         "--log-format=json"],
                        cwd=ROOT,
                        env={**os.environ, "CIVICFEED_NOW": now},
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )  # fmt: skip

    def kill(self, k: int) -> None:
        """SIGKILL to worker ``k`` and its children: a machine lost."""
        with suppress(ProcessLookupError):
            os.killpg(self.processes[k].pid, signal.SIGKILL)
        self.processes[k].wait()

    def stop(self) -> list[int]:
        """SIGTERM to those still running; their exit codes."""
        running = [p for p in self.processes if p.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        codes = []
        for process in running:
            try:
                codes.append(process.wait(timeout=60))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes.append(process.wait())
        return codes

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The workers' log records of this kind (``--log-format=json``)."""
        found = []
        for line in self.output().splitlines():
            with suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == kind:
                    found.append(event)
        return found


def wait_for(what: str, done: Callable[[], bool], workers: Workers, limit: float = 120) -> None:
    """Until ``done()``; the test fails with the workers' output if a worker ends or ``limit``
    seconds pass (a generous bound against hanging, not a measure of speed)."""
    deadline = time.monotonic() + limit
    while not done():
        ended = [p.returncode for p in workers.processes if p.poll() is not None]
        if ended and len(ended) == len(workers.processes):
            pytest.fail(f"{what}: every worker ended ({ended}):\n{workers.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit:g} s:\n{workers.output()[-3000:]}")
        time.sleep(0.2)


def finished(db: Any, now: str) -> Callable[[], bool]:
    """Every source attempted at ``now`` and no refresh or publish job left to do."""
    at = datetime.fromisoformat(now)
    return lambda: attempted(db, at)[0] == SOURCES and pending(db) == 0


def refreshed(db: Any, now: str, source_ids: Iterable[str]) -> Callable[[], bool]:
    """Each of these sources attempted at ``now``."""
    stamp, wanted = iso(datetime.fromisoformat(now)), sorted(set(source_ids))

    def done() -> bool:
        row = db.execute(
            "SELECT count(*) FROM sources WHERE id = ANY(%s)"
            " AND (last_success = %s OR last_error_at = %s)",
            (wanted, stamp, stamp),
        ).fetchone()
        return int(row[0]) == len(wanted)

    return done


def doing(db: Any) -> dict[int, tuple[int | None, str]]:
    """The refresh jobs under way: job id -> (worker id, source id)."""
    rows = db.execute(
        "SELECT id, worker_id, args->>'source_id' FROM procrastinate_jobs"
        " WHERE status = 'doing' AND task_name = 'refresh_source'"
    ).fetchall()
    return {int(r[0]): (r[1], str(r[2])) for r in rows}


def heartbeats(db: Any) -> dict[int, datetime]:
    rows = db.execute("SELECT id, last_heartbeat FROM procrastinate_workers").fetchall()
    return {int(r[0]): r[1] for r in rows}


def test_three_workers_with_one_killed_store_and_write_what_one_refresh_process_does(
    origin: OriginProcess, postgres_server: str, tmp_path: Path
) -> None:
    """Issue 11, step 5: three worker processes share 200 sources; every source is fetched
    once per period; one worker killed with SIGKILL while it has refreshes under way, and
    those are finished by the others once its heartbeat is STALLED_AFTER old; the entries
    and every file equal those of one `civicfeed refresh` process over the same origin."""
    ids = [source.id for source in sources(SOURCES, ADDRESSES, FIRST_ADDRESS)]
    with (
        pgserver.database(postgres_server) as shared,
        pgserver.database(postgres_server) as alone,
        psycopg.connect(shared, autocommit=True) as db,
    ):
        baseline = [refresh_once(tmp_path / "alone", origin, alone, T1)]
        config = write_config(tmp_path / "shared", origin, shared)

        # period 1: three workers, one killed while it has refreshes under way
        counts: Counter[str] = Counter(origin.paths())
        workers = Workers(config, T1, 3, tmp_path)
        try:

            def some_fetched() -> bool:
                # and every worker with a refresh under way, whichever of them is killed
                counts.update(origin.paths())
                if sum(counts.values()) < SOURCES // 4:
                    return False
                return len({worker for worker, _ in doing(db).values()}) == 3

            wait_for("a quarter of the sources fetched, every worker busy", some_fetched, workers)
            before, beats = doing(db), heartbeats(db)
            workers.kill(0)
            killed_at = time.monotonic()
            time.sleep(STALLED_AFTER / 2)  # the others' heartbeats move on, the killed one's not
            alive = {w for w, beat in heartbeats(db).items() if beat > beats.get(w, beat)}
            lost = {job: source for job, (worker, source) in before.items() if worker not in alive}
            assert lost, f"the killed worker had no refresh under way: {before}, alive {alive}"
            wait_for("the killed worker's sources", refreshed(db, T1, lost.values()), workers)
            record(
                "workers proof",
                f"{len(lost)} refreshes under way in the killed worker finished by the others "
                f"{time.monotonic() - killed_at:.1f} s after the kill (stalled after "
                f"{STALLED_AFTER} s)",
            )
            wait_for("period 1", finished(db, T1), workers)
            assert workers.stop() == [0, 0]
        finally:
            workers.stop()
        counts.update(origin.paths())
        recovered = {int(event["job"]) for event in workers.events("recovered")}
        assert set(lost) <= recovered, workers.output()[-3000:]
        # a source whose request was under way when its worker died is fetched again; no other
        assert set(counts) == {s.path for s in sources(SOURCES, ADDRESSES, FIRST_ADDRESS)}
        again = {path for path, count in counts.items() if count > 1}
        assert max(counts.values()) <= 2
        assert len(again) <= len(lost)

        # period 2: a day later, 10 % changed; every source fetched exactly once
        origin.change(10)
        origin.paths()
        workers = Workers(config, T2, 3, tmp_path)
        try:
            wait_for("period 2", finished(db, T2), workers)
            assert workers.stop() == [0, 0, 0]
        finally:
            workers.stop()
        assert fetched_once(origin.paths()) == []
        baseline.append(refresh_once(tmp_path / "alone", origin, alone, T2))

        stored = entries(shared, ids)
        assert max(stored.values()) == 1  # no duplicate
        assert stored == entries(alone, ids)  # none lost, none more
        written = exported(config, tmp_path / "shared" / "export")
        assert "alle.rss" in written
        # An aggregate's archive pages are frozen as they fill up, so which of its stories
        # share a page depends on the order its sources were refreshed in (one process: all
        # at once; workers: as they finish): the pages hold the same stories, and every other
        # file (its feeds, their current pages, every source's archive) has the same bytes.
        assert archived(written, "alle") == archived(baseline[-1], "alle")
        assert sum(archived(written, "alle").values()) > 0
        assert (
            differences(
                {k: v for k, v in written.items() if not k.startswith("archive/alle/")},
                {k: v for k, v in baseline[-1].items() if not k.startswith("archive/alle/")},
            )
            == []
        )
