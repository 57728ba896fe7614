"""The scale-out line: civicfeed on a PostgreSQL state, refreshed by 1, 2, 4, ... processes of
``civicfeed run --worker``, beside one ``civicfeed refresh`` process on the same kind of state.

    .venv/bin/python -m benchmarks --sizes 1000 --worker-processes 1,2,4

For every size N the benchmark's origin (origin.py) serves the N generated sources, and a
throw-away PostgreSQL cluster (pgserver.py, with ``track_functions = all``) holds one database
per contender. Each contender has the three runs of the main benchmark (first, unchanged,
10 % changed), each at a frozen time (CIVICFEED_NOW) one day after the one before, so that
every source is due exactly once per run. The refresh process runs until it ends; the workers
are started for each run and the run ends when every source has been attempted at that run's
time and no refresh or publish job is waiting or under way (polled in the database every
0.25 s); then they get SIGTERM.

Measured for each run: wall time (start of the processes to the end of the run), CPU time of
civicfeed's processes (and their children), their peak memory (the sum of the proportional
set sizes, sampled), the CPU time of PostgreSQL's processes and of the origin, and what the
rest of the machine used; from PostgreSQL's statistics: transactions committed, calls and
time of procrastinate's job-fetching function (its polling), rows written to the leases
table (claims and releases of source and host leases), and, sampled from pg_stat_activity,
the mean number of busy backends and of backends waiting for a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from . import pgserver
from .documents import sources, write_civicfeed_config
from .origin import OriginProcess
from .progress import attempted, pending
from .run import (
    ROOT,
    RUNS,
    _busy_cpu,
    _civicfeed,
    _civicfeed_failures,
    _command,
    _environment,
    _kill_group,
    _load,
    _num,
    _process_cpu,
    _reap_group,
    _sample,
    machine,
    run_child,
    write_block,
)

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # the first run's frozen time
POLL = 0.25  # seconds between looks at the database


@dataclass
class Figures:
    contender: str  # "refresh" or "k workers"
    run: str
    wall: float = 0.0
    cpu: float = 0.0
    peak_mb: float = 0.0
    postgres_cpu: float = 0.0
    origin_cpu: float = 0.0
    others_cpu: float = 0.0
    failed: int = 0
    served: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    fetch_calls: int = 0
    fetch_ms: float = 0.0
    lease_rows: int = 0
    busy: float = 0.0  # mean busy (active) backends
    lock_waits: float = 0.0  # mean backends waiting for a lock
    note: str = ""


class Postgres:
    """The cluster's CPU and one database's statistics, read over a connection of its own."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.db = psycopg.connect(url, autocommit=True)
        backend = self.db.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        self.postmaster = psutil.Process(psutil.Process(int(backend[0])).ppid())
        self.samples = 0
        self.busy = 0
        self.waiting = 0

    def close(self) -> None:
        self.db.close()

    def cpu(self) -> float:
        """User + system time of the postmaster, of its children alive now and of those it
        has reaped: the difference of two readings is what the cluster used in between."""
        times = self.postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        with contextlib.suppress(psutil.Error):
            for child in self.postmaster.children():
                with contextlib.suppress(psutil.Error):
                    own = child.cpu_times()
                    total += own.user + own.system
        return float(total)

    def counters(self) -> dict[str, float]:
        self.db.execute("SELECT pg_stat_clear_snapshot()")
        commits = self.db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        fetch = self.db.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_time), 0)"
            " FROM pg_stat_user_functions WHERE funcname LIKE 'procrastinate_fetch_job%'"
        ).fetchone()
        leases = self.db.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
            " FROM pg_stat_user_tables WHERE relname = 'leases'"
        ).fetchone()
        assert commits is not None
        assert fetch is not None
        assert leases is not None
        return {
            "commits": float(commits[0]),
            "fetch_calls": float(fetch[0]),
            "fetch_ms": float(fetch[1]),
            "lease_rows": float(leases[0]),
        }

    def sample(self) -> None:
        """One look at what the other backends of this database are doing."""
        row = self.db.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'),"
            " count(*) FILTER (WHERE wait_event_type = 'Lock')"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchone()
        assert row is not None
        self.samples += 1
        self.busy += int(row[0])
        self.waiting += int(row[1])

    def attempted(self, at: datetime) -> tuple[int, int]:
        return attempted(self.db, at)

    def pending(self) -> int:
        return pending(self.db)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    ended: dict[str, Any] = field(default_factory=dict)
    waiter: threading.Thread | None = None


class Workers:
    """``count`` worker processes, each in a process group of its own, their CPU time taken
    by wait4 when they end and their memory sampled while they run."""

    def __init__(self, argv: list[str], count: int, env: dict[str, str], log: Path) -> None:
        self.workers: list[_Worker] = []
        self.peak = 0
        self.highs: dict[int, int] = {}
        self._sampling = True
        with log.open("ab") as out:
            for _ in range(count):
                process = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                worker = _Worker(process)
                worker.waiter = threading.Thread(target=self._reap, args=(worker,), daemon=True)
                worker.waiter.start()
                self.workers.append(worker)
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    @staticmethod
    def _reap(worker: _Worker) -> None:
        _, status, usage = os.wait4(worker.process.pid, 0)
        worker.ended.update(status=status, usage=usage)

    def _sample(self) -> None:
        watched = [psutil.Process(w.process.pid) for w in self.workers]
        while self._sampling:
            self.peak = max(self.peak, sum(_sample(p, self.highs) for p in watched))
            time.sleep(0.1)

    def alive(self) -> bool:
        return all(not w.ended for w in self.workers)

    def stop(self, grace: float = 60.0) -> float:
        """SIGTERM to every worker, SIGKILL to what is left after ``grace`` seconds; the CPU
        time of them all and their descendants."""
        self._sampling = False
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        cpu = 0.0
        for worker in self.workers:
            assert worker.waiter is not None
            worker.waiter.join(max(0.0, deadline - time.monotonic()))
            if worker.waiter.is_alive():
                _kill_group(worker.process.pid)
                worker.waiter.join()
            cpu += _reap_group(worker.process.pid)
            usage = worker.ended["usage"]
            cpu += usage.ru_utime + usage.ru_stime
        self.sampler.join()
        return cpu

    @property
    def peak_mb(self) -> float:
        return max(self.peak, *self.highs.values(), 0) / 2**20


class ScaleOut:
    def __init__(self, args: argparse.Namespace, n: int, folder: Path) -> None:
        self.args, self.n, self.folder = args, n, folder
        self.figures: list[Figures] = []

    def run(self) -> list[Figures]:
        args, n = self.args, self.n
        chosen = sources(n, args.addresses)
        with pgserver.server("-c track_functions=all") as server:
            contenders = ["refresh", *(_workers(k) for k in args.worker_processes)]
            for contender in contenders:
                with (
                    OriginProcess(n, addresses=args.addresses, latency=args.latency) as origin,
                    pgserver.database(server) as url,
                ):
                    self.origin = origin
                    folder = self.folder / contender.replace(" ", "-")
                    config = write_civicfeed_config(
                        folder,
                        origin.url,
                        chosen,
                        per_host=args.per_host,
                        concurrency=args.concurrency,
                        timeout=args.source_timeout,
                        state=url,
                    )
                    postgres = Postgres(url)
                    try:
                        for number, run in enumerate(RUNS):
                            if run == "changed":
                                origin.change(args.change)
                            at = START + timedelta(days=number)
                            self._measure(contender, run, config, postgres, at)
                    finally:
                        postgres.close()
        return self.figures

    def _measure(
        self, contender: str, run: str, config: Path, postgres: Postgres, at: datetime
    ) -> None:
        env = {**_environment(), "CIVICFEED_NOW": at.isoformat()}
        log = config.parent / f"{run}.log"
        self.origin.stats()  # reset the counters
        before = postgres.counters()
        machine_cpu, pg_cpu = _busy_cpu(), postgres.cpu()
        origin_cpu, own = _process_cpu(self.origin.pid), time.process_time()
        postgres.samples = postgres.busy = postgres.waiting = 0
        note = ""
        started = time.perf_counter()
        if contender == "refresh":
            sampling = True

            def sample() -> None:
                while sampling:
                    postgres.sample()
                    time.sleep(POLL)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            child = run_child(
                [*_civicfeed(), "refresh", "--config", str(config)],
                log=log,
                timeout=self.args.run_timeout,
                env=env,
            )
            sampling = False
            sampler.join()
            wall, cpu, peak = child.wall, child.cpu, child.peak_mb
            failed, note = _civicfeed_failures(child, self.n)
        else:
            count = int(contender.split()[0])
            argv = [*_civicfeed(), "run", "--worker", "--config", str(config)]
            workers = Workers(argv, count, env, log)
            try:
                done, failed = self._wait(workers, postgres, at, started)
                wall = time.perf_counter() - started
            finally:
                cpu = workers.stop()
            peak = workers.peak_mb
            if not done:
                note = "did not finish: " + _tail(log)
        after = postgres.counters()
        others = (
            _busy_cpu()
            - machine_cpu
            - cpu
            - (postgres.cpu() - pg_cpu)
            - (_process_cpu(self.origin.pid) - origin_cpu)
            - (time.process_time() - own)
        )
        samples = max(postgres.samples, 1)
        figures = Figures(
            contender,
            run,
            wall=wall,
            cpu=cpu,
            peak_mb=peak,
            postgres_cpu=postgres.cpu() - pg_cpu,
            origin_cpu=_process_cpu(self.origin.pid) - origin_cpu,
            others_cpu=max(others, 0.0),
            failed=failed,
            served=self.origin.stats(),
            commits=int(after["commits"] - before["commits"]),
            fetch_calls=int(after["fetch_calls"] - before["fetch_calls"]),
            fetch_ms=after["fetch_ms"] - before["fetch_ms"],
            lease_rows=int(after["lease_rows"] - before["lease_rows"]),
            busy=postgres.busy / samples,
            lock_waits=postgres.waiting / samples,
            note=note,
        )
        self.figures.append(figures)
        print(_line(figures), flush=True)

    def _wait(
        self, workers: Workers, postgres: Postgres, at: datetime, started: float
    ) -> tuple[bool, int]:
        """Until every source was attempted at ``at`` and no work is left (True), or a worker
        ended or the run's time is up (False); and the failed sources."""
        while time.perf_counter() - started < self.args.run_timeout and workers.alive():
            postgres.sample()
            attempted, failed = postgres.attempted(at)
            if attempted >= self.n and postgres.pending() == 0:
                return True, failed
            time.sleep(POLL)
        attempted, failed = postgres.attempted(at)
        return False, self.n - attempted + failed


def _workers(count: int) -> str:
    return f"{count} worker" + ("s" if count > 1 else "")


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(" ".join(line.split()) for line in lines[-3:])[:300]


def _line(f: Figures) -> str:
    text = (
        f"  {f.contender:<10} {f.run:<10} wall {_num(f.wall):>7} s  cpu {_num(f.cpu):>7} s"
        f"  peak {_num(f.peak_mb, 0):>5} MB  postgres {_num(f.postgres_cpu):>6} s"
        f"  origin {_num(f.origin_cpu):>5} s  failed {f.failed}"
        f"  200/304 {f.served.get('200', 0)}/{f.served.get('304', 0)}"
    )
    return text + (f"  ({f.note})" if f.note else "")


def table(figures: list[Figures]) -> str:
    rows = [
        "| contender | run | wall s | CPU s | peak MB | PostgreSQL CPU s | origin CPU s"
        " | others' CPU s | failed | 200 / 304 | commits | job fetches (ms) | lease rows"
        " | busy backends | waiting for a lock |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        rows.append(
            f"| {f.contender} | {f.run} | {_num(f.wall)} | {_num(f.cpu)} | {_num(f.peak_mb, 0)}"
            f" | {_num(f.postgres_cpu)} | {_num(f.origin_cpu)} | {_num(f.others_cpu, 1)}"
            f" | {f.failed} | {f.served.get('200', 0)} / {f.served.get('304', 0)}"
            f" | {f.commits} | {f.fetch_calls} ({f.fetch_ms:.0f}) | {f.lease_rows}"
            f" | {f.busy:.2f} | {f.lock_waits:.2f} |"
        )
    notes = [f"- {f.contender}, {f.run}: {f.note}" for f in figures if f.note]
    return "\n".join(rows + (["", *notes] if notes else []))


def benchmark(args: argparse.Namespace, argv: list[str]) -> None:
    print(machine())
    for n in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"civicfeed-scaleout-{n}-"))
        print(
            f"\nN = {n}, PostgreSQL state: one refresh process, then "
            f"{', '.join(map(str, args.worker_processes))} worker processes (files in {folder})"
        )
        load_before, started, measured_on = _load(), datetime.now(UTC), machine()
        try:
            figures = ScaleOut(args, n, folder).run()
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        text = table(figures)
        print("\n" + text)
        if args.results:
            write_block(
                f"scale-out {n}",
                f"### Scale-out, N = {n}, PostgreSQL state\n\n"
                f"{started:%Y-%m-%d %H:%M} UTC, `{_command(argv)}`; {measured_on}.\n"
                f"Latency {args.latency * 1000:g} ms per request, {args.addresses} loopback "
                f"addresses, per_host {args.per_host}, {args.change:g} % changed in the third "
                f"run. Load average (1 / 5 / 15 min) {load_before} before, {_load()} after.\n\n"
                + text,
                args.results,
            )
