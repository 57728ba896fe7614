"""Side-by-side benchmark: civicfeed, lemon24/reader and the floor, over a loopback origin.

    .venv/bin/python -m benchmarks [--sizes 100,1000,5000] [--latency 0.1] [--addresses 64]
    .venv/bin/python -m benchmarks --profile 200

For every size N a fresh origin process (benchmarks/origin.py) serves N generated sources
(half RSS 2.0 feeds, half HTML listings; 30 items, 20-60 KB each) on 127.0.0.1-127.0.0.64,
answering every request after ``--latency`` seconds and conditional requests with 304. Then
three runs, each contender a process of its own, one after the other:

- ``first``: every source new;
- ``unchanged``: nothing changed, every answer a 304;
- ``changed``: after 10 % of the sources got 3 new stories each.

Contenders: ``civicfeed refresh`` on all N sources and on the feed half alone; reader
(``update_feeds(workers=16)``) on the feed half; the network floor (an httpx fetch-only loop at
civicfeed's limits) on both sets; the parsing floor (feedparser and lxml on the same documents,
one process). For each: wall time, CPU time (user + system of the process and the children it
waited for), peak memory (the largest sum of the proportional set sizes of the process and
its children, sampled 10 times a second, or the high-water mark of the largest one's resident
size if that is more), failed sources, and what the origin served. Results are printed and
written to benchmarks/RESULTS.md (each size's block replaced, everything else in the file kept).

``--profile N`` runs one civicfeed first refresh of N sources under cProfile instead and
writes where the CPU time goes (by package and by function).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from .documents import sources, write_civicfeed_config
from .origin import OriginProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
RUNS = ("first", "unchanged", "changed")
CONTENDERS = ("civicfeed", "civicfeed-feeds", "reader", "fetch", "fetch-feeds", "parse")
LABELS = {
    "civicfeed": "civicfeed, feeds + listings",
    "civicfeed-feeds": "civicfeed, feeds only",
    "reader": "reader, workers=16, feeds",
    "fetch": "fetch only, feeds + listings",
    "fetch-feeds": "fetch only, feeds",
    "parse": "parse only, feedparser + lxml",
    "parse-feeds": "parse only, feedparser",
    "parse-civicfeed": "parse only, civicfeed",
    "render-civicfeed": "rendering only, civicfeed",
}


@dataclass
class Measurement:
    contender: str
    sources: int
    run: str
    wall: float | None = None
    cpu: float | None = None
    peak_mb: float | None = None
    failed: int | None = None
    served: dict[str, int] = field(default_factory=dict)
    others_cpu: float | None = None
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # what a floor did: feeds, files


@dataclass
class Child:
    wall: float
    cpu: float
    peak_mb: float
    code: int
    timed_out: bool
    output: str


def _environment() -> dict[str, str]:
    """The children's environment: no proxy (everything is on loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


def _high_water(pid: int) -> int:
    """VmHWM: the most memory this process has had resident since it started its program."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _sample(process: psutil.Process, highs: dict[int, int]) -> int:
    """The memory of the process and all its children now, each counted by its proportional
    share (PSS: pages that forked workers share count once in all); each one's high-water mark
    of resident memory goes into ``highs``."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in family:
        with contextlib.suppress(psutil.Error):
            try:
                total += member.memory_full_info().pss
            except AttributeError:  # no PSS on this system
                total += member.memory_info().rss
            highs[member.pid] = max(highs.get(member.pid, 0), _high_water(member.pid))
    return total


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_child(
    argv: list[str],
    *,
    log: Path,
    timeout: float,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> Child:
    """Run ``argv`` in a process group of its own; its own rusage via wait4, memory sampled."""
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or _environment(),
            start_new_session=True,
        )
    ended: dict[str, Any] = {}

    def reap() -> None:
        _, status, usage = os.wait4(process.pid, 0)
        ended.update(at=time.perf_counter(), status=status, usage=usage)

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    watched = psutil.Process(process.pid)
    peak, highs, timed_out = 0, dict[int, int](), False
    try:
        while waiter.is_alive():
            peak = max(peak, _sample(watched, highs))
            waiter.join(0.1)
            if waiter.is_alive() and time.perf_counter() - started > timeout:
                timed_out = True
                _kill_group(process.pid)
                waiter.join()
    finally:
        if waiter.is_alive():  # interrupted: leave nothing behind
            _kill_group(process.pid)
            waiter.join(5)
        orphans = _reap_group(process.pid)
    process.returncode = os.waitstatus_to_exitcode(ended["status"])
    usage = ended["usage"]
    return Child(
        wall=ended["at"] - started,
        cpu=usage.ru_utime + usage.ru_stime + orphans,
        # not ru_maxrss: Linux counts in it the memory of the forked copy of this process
        peak_mb=max(peak, *highs.values(), 0) / 2**20,
        code=process.returncode,
        timed_out=timed_out,
        output=log.read_text(errors="replace"),
    )


def _become_subreaper() -> None:
    """Descendants whose parent ends before them (a forkserver and its workers, say) become
    this process's children, so that their CPU time is counted and they are ended here."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_group(pgid: int, grace: float = 5.0) -> float:
    """Wait (up to ``grace`` seconds, then kill) for what is left of the process group once its
    leader has ended; the CPU time of those processes and of the children they waited for."""
    cpu, deadline, killed = 0.0, time.monotonic() + grace, False
    while True:
        try:
            pid, _, usage = os.wait4(-pgid, os.WNOHANG)
        except ChildProcessError:  # none of them is (or became) a child of ours
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return cpu  # the group is gone
            pid = 0
        if pid:
            cpu += usage.ru_utime + usage.ru_stime
            continue
        if not killed and time.monotonic() > deadline:
            _kill_group(pgid)
            killed = True
        time.sleep(0.02)
        if killed and time.monotonic() > deadline + grace:
            return cpu  # not ours to reap and will not die: leave it


def _busy_cpu() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    guests = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)  # within user
    return float(sum(times) - idle - guests)


def _process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _civicfeed() -> list[str]:
    script = Path(sys.executable).with_name("civicfeed")
    return [str(script)] if script.exists() else [sys.executable, "-m", "civicfeed"]


def _civicfeed_failures(child: Child, total: int) -> tuple[int, str]:
    """Failed sources, from the summary line `civicfeed refresh` ends with, and a reason."""
    if child.code == 0:
        return 0, ""
    lines = child.output.strip().splitlines()
    summary = re.search(r"(\d+) source\(s\): (\d+) ok", child.output)
    if child.code == 1 and summary:
        reasons = [line for line in lines if re.match(r"civicfeed: (?!warning:)[a-z0-9-]+: ", line)]
        return int(summary[1]) - int(summary[2]), "; ".join(reasons[:3])[:300]
    return total, f"exit {child.code}: " + " | ".join(lines[-3:])[:300]


def _json_tail(child: Child) -> dict[str, Any]:
    for line in reversed(child.output.strip().splitlines()):
        with contextlib.suppress(ValueError):
            answer: dict[str, Any] = json.loads(line)
            return answer
    return {}


class Bench:
    def __init__(self, args: argparse.Namespace, n: int, folder: Path) -> None:
        self.args, self.n, self.folder = args, n, folder
        self.measurements: list[Measurement] = []

    def run(self) -> list[Measurement]:
        args, n = self.args, self.n
        every = sources(n, args.addresses)
        feeds = [s for s in every if s.kind == "rss"]
        with OriginProcess(n, addresses=args.addresses, latency=args.latency) as origin:
            self.origin = origin
            sets = {"civicfeed": every, "civicfeed-feeds": feeds, "fetch": every}
            sets |= {"fetch-feeds": feeds, "reader": feeds}
            configs = {
                name: write_civicfeed_config(
                    self.folder / name,
                    origin.url,
                    sets[name],
                    per_host=args.per_host,
                    concurrency=args.concurrency,
                    timeout=args.source_timeout,
                )
                for name in ("civicfeed", "civicfeed-feeds")
                if name in args.contenders
            }
            for name in ("fetch", "fetch-feeds", "reader"):
                (self.folder / f"{name}.urls").write_text(
                    "".join(origin.url(s) + "\n" for s in sets[name])
                )
            if "reader" in args.contenders:
                child = self._child(
                    "reader-setup",
                    [*self._module(), "reader-setup", self._reader_db(), self._urls("reader")],
                )
                if child.code != 0:
                    raise SystemExit(f"reader could not be set up:\n{child.output}")
            for run in RUNS:
                if run == "changed":
                    origin.change(args.change)
                for contender in CONTENDERS:
                    if contender not in args.contenders:
                        continue
                    if contender == "parse":
                        self._parse(run)
                        continue
                    self._measure(contender, run, len(sets[contender]), configs.get(contender))
        return self.measurements

    def _module(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.contenders"]

    def _reader_db(self) -> str:
        return str(self.folder / "reader.sqlite")

    def _urls(self, name: str) -> str:
        return str(self.folder / f"{name}.urls")

    def _child(self, label: str, argv: list[str]) -> Child:
        return run_child(argv, log=self.folder / f"{label}.log", timeout=self.args.run_timeout)

    def _measure(self, contender: str, run: str, count: int, config: Path | None) -> None:
        args = self.args
        if config is not None:
            argv = [*_civicfeed(), "refresh", "--config", str(config)]
        elif contender == "reader":
            argv = [*self._module(), "reader", self._reader_db(), f"--workers={args.workers}"]
        else:
            concurrency = args.concurrency or _civicfeed_default("concurrency")
            argv = [
                *self._module(),
                "fetch",
                str(self.folder / f"{contender}.state.json"),
                self._urls(contender),
                f"--concurrency={concurrency}",
                f"--per-host={args.per_host}",
            ]
        self.origin.stats()  # reset the counters
        machine, origin_cpu, own = _busy_cpu(), _process_cpu(self.origin.pid), time.process_time()
        child = self._child(f"{contender}-{run}", argv)
        others = (
            _busy_cpu()
            - machine
            - child.cpu
            - (_process_cpu(self.origin.pid) - origin_cpu)
            - (time.process_time() - own)
        )
        served = self.origin.stats()
        if child.timed_out:
            failed, note = count, f"timed out after {args.run_timeout:g} s"
        elif config is not None:
            failed, note = _civicfeed_failures(child, count)
        else:
            answer = _json_tail(child)
            failed = int(answer.get("failed", count)) if child.code == 0 else count
            note = "; ".join(answer.get("errors", [])) if child.code == 0 else child.output[-300:]
        self._record(
            Measurement(
                contender,
                count,
                run,
                child.wall,
                child.cpu,
                child.peak_mb,
                failed,
                served,
                max(others, 0.0),
                note,
            )
        )

    def _parse(self, run: str) -> None:
        if run == "unchanged":  # nothing to parse
            counted = (("parse", self.n), ("parse-feeds", self.n // 2), ("parse-civicfeed", self.n))
            for contender, count in counted:
                self._record(Measurement(contender, count, run, cpu=0.0, failed=0))
            return
        argv = [
            *self._module(),
            "parse",
            f"--sources={self.n}",
            f"--addresses={self.args.addresses}",
        ]
        if run == "changed":
            argv.append(f"--changed={self.args.change}")
        child = self._child(f"parse-{run}", argv)
        answer = _json_tail(child)
        if child.code != 0 or not answer:
            raise SystemExit(f"the parsing floor failed:\n{child.output}")
        feeds, listings = float(answer["feedparser_cpu"]), float(answer["lxml_cpu"])
        self._record(Measurement("parse", self.n, run, cpu=feeds + listings, failed=0))
        self._record(Measurement("parse-feeds", self.n // 2, run, cpu=feeds, failed=0))
        own = float(answer["civicfeed_parse_cpu"])
        self._record(Measurement("parse-civicfeed", self.n, run, cpu=own, failed=0))
        if "civicfeed_render_cpu" in answer:  # a first run: every feed rendered
            counts = {"feeds": int(answer["feeds"]), "files": int(answer["files"])}
            rendering = float(answer["civicfeed_render_cpu"])
            self._record(
                Measurement("render-civicfeed", self.n, run, cpu=rendering, failed=0, counts=counts)
            )

    def _record(self, m: Measurement) -> None:
        self.measurements.append(m)
        print(_line(m), flush=True)


def _civicfeed_default(key: str) -> int:
    import dataclasses

    from civicfeed.config import Config

    value = next(part.default for part in dataclasses.fields(Config) if part.name == key)
    assert isinstance(value, int)
    return value


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _line(m: Measurement) -> str:
    served = f"{m.served.get('200', 0)}/{m.served.get('304', 0)}" if m.served else "–"
    text = (
        f"  {LABELS[m.contender]:<31} {m.run:<10} wall {_num(m.wall):>7} s  cpu {_num(m.cpu):>7}"
        f" s  peak {_num(m.peak_mb, 0):>5} MB  failed {m.failed}  200/304 {served}"
    )
    return text + (f"  ({m.note})" if m.note else "")


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}"


def table(measurements: list[Measurement]) -> str:
    found = {(m.contender, m.run): m for m in measurements}

    def get(contender: str, run: str) -> Measurement | None:
        return found.get((contender, run))

    rows = [
        "| contender | sources | run | wall s | CPU s | peak MB | failed | 200 / 304 | connections"
        " | others' CPU s | wall ÷ reader | CPU ÷ reader | wall ÷ fetch floor"
        " | CPU ÷ parse floor |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floors = {
        "civicfeed": ("fetch", "parse"),
        "civicfeed-feeds": ("fetch-feeds", "parse-feeds"),
        "reader": ("fetch-feeds", "parse-feeds"),
    }
    for m in measurements:
        reader = get("reader", m.run) if m.contender == "civicfeed-feeds" else None
        fetch_floor = parse_floor = None
        if m.contender in floors:
            fetch_floor = get(floors[m.contender][0], m.run)
            parse_floor = get(floors[m.contender][1], m.run)
        served = f"{m.served.get('200', 0)} / {m.served.get('304', 0)}" if m.served else "–"
        rows.append(
            f"| {LABELS[m.contender]} | {m.sources} | {m.run} | {_num(m.wall)} | {_num(m.cpu)} "
            f"| {_num(m.peak_mb, 0)} | {m.failed if m.failed is not None else '–'} | {served} "
            f"| {m.served.get('connections', '–') if m.served else '–'} "
            f"| {_num(m.others_cpu, 1)} "
            f"| {_ratio(m.wall, reader.wall if reader else None)} "
            f"| {_ratio(m.cpu, reader.cpu if reader else None)} "
            f"| {_ratio(m.wall, fetch_floor.wall if fetch_floor else None)} "
            f"| {_ratio(m.cpu, parse_floor.cpu if parse_floor else None)} |"
        )
    notes = [f"- {LABELS[m.contender]}, {m.run}: {m.note}" for m in measurements if m.note]
    return "\n".join(rows + (["", *notes] if notes else []))


def targets(n: int, measurements: list[Measurement], file_ms: float | None = None) -> list[str]:
    """Issue 12's targets (set for N = 1,000; memory also for 5,000), met or missed, and what
    civicfeed's own stages alone would take (``own_floor``); ``file_ms``: the CPU milliseconds
    that writing one published file cost in this run (``file_cost``)."""
    if n not in (1000, 5000):
        return []
    found = {(m.contender, m.run): m for m in measurements}

    def value(contender: str, run: str, what: str) -> float | None:
        m = found.get((contender, run))
        return None if m is None else getattr(m, what)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b <= 0 else a / b

    checks: list[tuple[str, float | None, float, str]] = []
    if n == 1000:
        checks += [
            ("first refresh: failed sources", value("civicfeed", "first", "failed"), 0, ""),
            (
                "first refresh, feed half: civicfeed wall ÷ reader wall",
                ratio(value("civicfeed-feeds", "first", "wall"), value("reader", "first", "wall")),
                1 / 3,
                "",
            ),
            (
                "first refresh, feeds + listings: wall ÷ fetch-only floor",
                ratio(value("civicfeed", "first", "wall"), value("fetch", "first", "wall")),
                2,
                "",
            ),
            ("unchanged: wall", value("civicfeed", "unchanged", "wall"), 2.5, " s"),
            ("unchanged: CPU", value("civicfeed", "unchanged", "cpu"), 1.5, " s"),
            (
                "unchanged, feed half: civicfeed CPU ÷ reader CPU (no target)",
                ratio(
                    value("civicfeed-feeds", "unchanged", "cpu"),
                    value("reader", "unchanged", "cpu"),
                ),
                float("inf"),
                "",
            ),
            ("10 % changed: wall", value("civicfeed", "changed", "wall"), 4, " s"),
        ]
        rendering = found.get(("render-civicfeed", "first"))
        if rendering is not None and rendering.cpu is not None and rendering.counts:
            checks.append(
                (
                    "first refresh: rendering alone, CPU per feed (every feed of a first run:"
                    f" {rendering.counts['feeds']} feeds, {rendering.counts['files']} documents)",
                    1000 * rendering.cpu / rendering.counts["feeds"],
                    3,
                    " ms",
                )
            )
        floor = own_floor(found, file_ms)
        if floor is not None:
            checks.append(
                (
                    "first refresh, feeds + listings: civicfeed's own floor ÷ fetch-only floor"
                    f" (no target: {floor[1]}; above 2.00 the 2× target above cannot be met on"
                    " this machine)",
                    floor[0],
                    float("inf"),
                    "",
                )
            )
    peaks = [m.peak_mb for m in measurements if m.contender == "civicfeed" and m.peak_mb]
    checks.append(("peak memory", max(peaks) if peaks else None, 300 if n == 1000 else 1000, " MB"))
    lines = [f"Targets of issue 12 at N = {n} (feeds + listings unless said):", ""]
    for label, got, limit, unit in checks:
        if got is None:
            verdict = "not measured"
        elif limit == float("inf"):
            verdict = f"{got:.2f}{unit}"
        else:
            verdict = "met" if got <= limit else "missed"
            verdict = f"{got:.2f}{unit}, target ≤ {limit:.2f}{unit}: **{verdict}**"
        lines.append(f"- {label}: {verdict}")
    return lines


def own_floor(
    found: dict[tuple[str, str], Measurement], file_ms: float | None
) -> tuple[float, str] | None:
    """The first refresh's wall time if civicfeed did nothing but what its stages cannot do
    without, spread perfectly over the cores, as a ratio to the fetch-only floor's wall time,
    and how it was made: the fetch-only loop's CPU time, civicfeed's parsing and rendering
    alone (``floors``) and writing the files it renders at this run's cost per file; no
    deduplication, store, queue or worker processes. None where a part was not measured."""
    fetch = found.get(("fetch", "first"))
    parse = found.get(("parse-civicfeed", "first"))
    render = found.get(("render-civicfeed", "first"))
    if file_ms is None or fetch is None or parse is None or render is None:
        return None
    if not fetch.wall or fetch.cpu is None or parse.cpu is None or render.cpu is None:
        return None
    writing = render.counts.get("files", 0) * file_ms / 1000
    cores = os.cpu_count() or 1
    total = fetch.cpu + parse.cpu + render.cpu + writing
    how = (
        f"fetch-only CPU {fetch.cpu:.2f} s + parsing {parse.cpu:.2f} s + rendering"
        f" {render.cpu:.2f} s + writing {writing:.2f} s = {total:.2f} s of CPU, on {cores}"
        f" cores {total / cores:.2f} s, against the fetch-only floor's {fetch.wall:.2f} s;"
        f" {(total - fetch.cpu) / cores / fetch.wall:.2f} even with no CPU spent on fetching"
    )
    return total / cores / fetch.wall, how


def machine() -> str:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = psutil.virtual_memory().total / 2**30
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("civicfeed", "reader", "feedparser", "httpx", "lxml")
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB memory, Python "
        f"{platform.python_version()} on {platform.system()} {platform.release()}; "
        f"{versions}; civicfeed commit {commit or 'unknown'}"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _command(argv: list[str]) -> str:
    return ".venv/bin/python -m benchmarks " + " ".join(argv)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def write_block(key: str, text: str, path: Path = RESULTS) -> None:
    """Replace the block ``key`` in RESULTS.md (or add it at the end), keeping the rest."""
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if start in old and end in old:
        before, rest = old.split(start, 1)
        new = before + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")


# What writing one published file costs this machine, measured beside each size's runs: a file
# of the size of a feed's documents, written as civicfeed writes every file it publishes.
PROBE_FILES = 300
PROBE_BYTES = 26_000


def file_cost(folder: Path) -> float:
    """CPU milliseconds this process spends on each of PROBE_FILES new files of PROBE_BYTES
    written into a new folder inside ``folder`` as civicfeed publishes them
    (``civicfeed.write.FolderOutput``: each a temporary file beside its name, written; the
    batch flushed to disk and renamed; the folder flushed once). The files stay, for the
    caller to remove with the rest: removing them here would make the next files dearer (see
    ``benchmark``)."""
    from civicfeed.write import FolderOutput

    place = Path(tempfile.mkdtemp(prefix="file-cost-", dir=folder))
    data = b"x" * PROBE_BYTES
    output = FolderOutput(place)
    start = time.process_time()
    for number in range(PROBE_FILES):
        output.put(f"{number}.rss", data)
    output.flush()
    return (time.process_time() - start) * 1000 / PROBE_FILES


# How fast this machine runs Python at the moment, measured beside each size's runs: on a shared
# host the same code runs up to 1.7 times slower in one hour, or one minute, than in another,
# so figures taken at different times compare only together with this rate.
SPEED_LOOPS = 2_000_000


def machine_speed(tries: int = 3) -> float:
    """Millions of iterations per second of a plain Python loop (an addition and a comparison
    each), the best of ``tries`` timings by this process's CPU clock: the first timing of a
    process and any timing that shared a core run low."""
    best = 0.0
    for _ in range(tries):
        total, start = 0, time.process_time()
        for number in range(SPEED_LOOPS):
            total += number & 7
            if total > 1 << 62:
                total = 0
        spent = time.process_time() - start
        best = max(best, SPEED_LOOPS / spent / 1e6 if spent > 0 else 0.0)
    return best


def benchmark(args: argparse.Namespace, argv: list[str]) -> None:
    print(machine())
    # Every size's folder is removed at the end, not before the next size: on an ext4 file
    # system without a journal (this machine's), the kernel does not reuse an inode freed in the
    # last minute (six while its inode table block has not been written back) and steps over each
    # of them to find a free one, so that files created soon after thousands were removed cost
    # up to 20 times the CPU (``file_cost`` shows what it was during each size's runs).
    folders: list[Path] = []
    try:
        for n in args.sizes:
            folder = Path(tempfile.mkdtemp(prefix=f"civicfeed-benchmark-{n}-"))
            folders.append(folder)
            _benchmark_size(args, argv, n, folder)
    finally:
        if not args.keep:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)


def _benchmark_size(args: argparse.Namespace, argv: list[str], n: int, folder: Path) -> None:
    """One size's runs in ``folder``: the table and the targets printed, and written into
    RESULTS.md unless ``--results ''``."""
    print(
        f"\nN = {n}: latency {args.latency * 1000:g} ms, {args.addresses} addresses, "
        f"per_host {args.per_host}, concurrency "
        f"{args.concurrency or _civicfeed_default('concurrency')} (files in {folder})"
    )
    load_before, started, measured_on = _load(), datetime.now(UTC), machine()
    cost_before, speed_before = file_cost(folder), machine_speed()
    measurements = Bench(args, n, folder).run()
    cost_after, speed_after = file_cost(folder), machine_speed()
    load_after = _load()
    files = (
        f"Writing a published file ({PROBE_BYTES // 1000} KB, as civicfeed writes a batch: "
        f"created beside its name, flushed to disk, renamed) cost {cost_before:.3f} ms of "
        f"CPU before the runs and {cost_after:.3f} ms after; a plain Python loop ran "
        f"{speed_before:.1f} M and {speed_after:.1f} M iterations per second of CPU."
    )
    print(files)
    text = "\n\n".join(
        part
        for part in (
            table(measurements),
            "\n".join(targets(n, measurements, (cost_before + cost_after) / 2)),
        )
        if part
    )
    print("\n" + text)
    if args.results:
        write_block(
            f"results {n}",
            f"### N = {n}\n\n"
            f"{started:%Y-%m-%d %H:%M} UTC, `{_command(argv)}`; {measured_on}.\n"
            f"Latency {args.latency * 1000:g} ms per request, {args.addresses} loopback "
            f"addresses, per_host {args.per_host}, concurrency "
            f"{args.concurrency or _civicfeed_default('concurrency')}, {args.change:g} % "
            f"changed in the third run. Load average (1 / 5 / 15 min) {load_before} "
            f"before, {load_after} after; *others' CPU s* is the CPU time the rest of the "
            f"machine used while that contender ran. {files}\n\n" + text,
            args.results,
        )


def profile(args: argparse.Namespace, argv: list[str]) -> None:
    """One first refresh under cProfile timed by CPU, one timed by the clock, and the tables."""
    n = args.profile
    folder = Path(tempfile.mkdtemp(prefix=f"civicfeed-profile-{n}-"))
    load = _load()
    runs: dict[str, tuple[Child, Path]] = {}
    try:
        with OriginProcess(n, addresses=args.addresses, latency=args.latency) as origin:
            for clock in ("none", "cpu", "wall"):
                config = write_civicfeed_config(
                    folder / clock,
                    origin.url,
                    sources(n, args.addresses),
                    per_host=args.per_host,
                    concurrency=args.concurrency,
                    timeout=args.source_timeout,
                )
                data = folder / f"{clock}.prof"
                command = [*_civicfeed(), "refresh", "--config", str(config)]
                if clock != "none":
                    command = [
                        *(sys.executable, "-m", "benchmarks.contenders", "profile"),
                        *(f"--clock={clock}", str(data), *command[-3:]),
                    ]
                child = run_child(command, log=folder / f"{clock}.log", timeout=args.run_timeout)
                if clock == "none":
                    data.touch()
                elif not data.exists() or not data.stat().st_size:
                    raise SystemExit(f"the profiled refresh failed:\n{child.output}")
                runs[clock] = child, data
        lines = [
            f"### Profile: civicfeed first refresh, N = {n}",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{_command(argv)}`; {machine()}. Load "
            f"average before {load}, after {_load()}. cProfile of civicfeed's own process "
            "with the jobs it gives its worker processes (parsing) run in that process instead, "
            "so that the profiler sees them (what handing them over costs is not in it), once "
            "timed by CPU time and once by the clock. The profiler's cost per call makes "
            "functions called very often look dearer than they are; compare with the run "
            "without it (worker processes as usual):",
            "",
        ]
        for clock, (child, _) in runs.items():
            failed, note = _civicfeed_failures(child, n)
            outcome = f"{failed} failed" + (f" ({note})" if note else "")
            how = "without the profiler" if clock == "none" else f"profiled, timed by {clock}"
            lines.append(f"- {how}: wall {child.wall:.2f} s, CPU {child.cpu:.2f} s, {outcome}")
        cpu_data, wall_data = runs["cpu"][1], runs["wall"][1]
        extra = max(runs["cpu"][0].cpu - runs["none"][0].cpu, 0.0)
        per_call = extra / max(_calls(cpu_data), 1)
        lines += [
            "",
            "**CPU time** by package or module (own time; a built-in function counts for the "
            f"module that calls it most). The profiler added {extra:.2f} s of CPU over "
            f"{_calls(cpu_data)} calls (about {per_call * 1e6:.2f} µs a call): a group with "
            "many calls for its time is dearer here than without it.",
            "",
            *describe_groups(cpu_data),
            "",
            "**Wall time** by package or module, the same way (waiting included: where this "
            "exceeds the CPU table, the process waited there):",
            "",
            *describe_groups(wall_data),
            "",
            "**Top functions by cumulative CPU time** (in them and what they call):",
            "",
            *describe_functions(cpu_data),
        ]
        text = "\n".join(lines)
        if args.keep:
            print(f"profile data: {cpu_data}, {wall_data}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(text)
    if args.results:
        write_block(f"profile {n}", text, args.results)


def _module(file: str) -> str:
    """The dotted module of a function's file ("" for a built-in)."""
    if file.startswith("~"):
        return ""
    if file.startswith("<frozen "):
        return file.removeprefix("<frozen ").removesuffix(">")
    parts = Path(file).with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    for marker in ("site-packages", "src", "python3.11", "python3.12", "python3.13"):
        if marker in parts:
            return ".".join(parts[len(parts) - parts[::-1].index(marker) :])
    return ".".join(parts[-2:])


def _where(file: str) -> str:
    """A function's group: a package, a civicfeed module, the standard library's modules."""
    module = _module(file)
    if module.startswith("importlib"):
        return "imports (importlib)"
    if module.startswith("civicfeed."):
        return ".".join(module.split(".")[:2])
    return module.split(".")[0]


def _short(key: tuple[str, int, str]) -> str:
    file, line, name = key
    module = _module(file)
    if not module:
        return name
    return f"{module}:{line} {name}" if module.startswith("civicfeed") else f"{module} {name}"


_Entry = tuple[int, int, float, float, dict[Any, Any]]


def _load_stats(data: Path) -> dict[tuple[str, int, str], _Entry]:
    table: dict[tuple[str, int, str], _Entry] = pstats.Stats(str(data)).stats  # type: ignore[attr-defined]
    return table


def describe_groups(data: Path, rows: int = 16) -> list[str]:
    """Own time and calls by group (a built-in function counts for its main caller's)."""
    table = _load_stats(data)
    total = sum(entry[2] for entry in table.values())
    groups: dict[str, float] = {}
    calls: dict[str, int] = {}
    for key, (_, count, own, _, callers) in table.items():
        group = _where(key[0])
        seen = {key}
        while not group and callers:  # a built-in: the group of its main caller
            caller = max(callers, key=lambda k: callers[k][3])
            if caller in seen:
                break
            seen.add(caller)
            group = _where(caller[0])
            callers = table.get(caller, (0, 0, 0.0, 0.0, {}))[4]
        groups[group or "other"] = groups.get(group or "other", 0.0) + own
        calls[group or "other"] = calls.get(group or "other", 0) + count
    lines = [f"| where (total {total:.2f} s) | own s | share | calls |", "|---|---:|---:|---:|"]
    for group, own in sorted(groups.items(), key=lambda g: -g[1])[:rows]:
        lines.append(f"| {group} | {own:.2f} | {100 * own / total:.0f} % | {calls[group]} |")
    return lines


def _calls(data: Path) -> int:
    return sum(entry[1] for entry in _load_stats(data).values())


def describe_functions(data: Path, rows: int = 30) -> list[str]:
    table = _load_stats(data)
    lines = ["| function | calls | cumulative s | own s |", "|---|---:|---:|---:|"]
    ranked = sorted(table.items(), key=lambda item: -item[1][3])
    for key, (_, calls, own, cumulative, _) in ranked[:rows]:
        lines.append(f"| {_short(key)} | {calls} | {cumulative:.2f} | {own:.2f} |")
    return lines


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes like 100,1000,5000") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes like 100,1000,5000")
    return sizes


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers of processes like 1,2,4")
    return counts


def _contenders(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in CONTENDERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {','.join(CONTENDERS)}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sizes", type=_sizes, default="100,1000,5000", help="values of N")
    p.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    p.add_argument("--addresses", type=int, default=64, help="loopback addresses used")
    p.add_argument("--per-host", type=int, default=2, help="civicfeed's per_host, and the floor's")
    p.add_argument(
        "--concurrency",
        type=int,
        help="civicfeed's concurrency, and the floor's (default: its own)",
    )
    p.add_argument("--workers", type=int, default=16, help="reader's update_feeds(workers=...)")
    p.add_argument("--change", type=float, default=10.0, help="percent changed in the third run")
    p.add_argument(
        "--source-timeout", type=float, default=900.0, help="civicfeed's per-source timeout, s"
    )
    p.add_argument(
        "--run-timeout", type=float, default=1800.0, help="seconds before one run is killed"
    )
    p.add_argument(
        "--contenders",
        type=_contenders,
        default=",".join(CONTENDERS),
        help="a comma-separated subset",
    )
    p.add_argument("--profile", type=int, metavar="N", help="profile one first refresh instead")
    p.add_argument(
        "--worker-processes",
        type=_counts,
        metavar="K,K,...",
        help="instead: the scale-out line on a PostgreSQL state, one `refresh` process and "
        "these numbers of `run --worker` processes (benchmarks/scaleout.py)",
    )
    p.add_argument(
        "--results",
        default="benchmarks/RESULTS.md",
        help="Markdown file for the results, relative to the repository ('' for none)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated files and logs")
    return p


def _compile_civicfeed() -> None:
    """Compile civicfeed's modules before anything is timed, as installing it from a wheel does:
    an editable install compiles them at the first import, or at every start where
    PYTHONDONTWRITEBYTECODE is set, which would time the compiler."""
    import compileall

    import civicfeed

    compileall.compile_dir(Path(civicfeed.__file__).parent, quiet=1)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.results = ROOT / args.results if args.results else None
    if args.addresses < 1 or args.addresses > 254:
        raise SystemExit("--addresses: 1 to 254")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    _compile_civicfeed()
    _become_subreaper()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), stop)
    try:
        if args.profile:
            profile(args, argv)
        elif args.worker_processes:
            from . import scaleout

            scaleout.benchmark(args, argv)
        else:
            benchmark(args, argv)
    except KeyboardInterrupt:
        print("benchmark: interrupted; its processes are ended", file=sys.stderr)
        raise SystemExit(130) from None
