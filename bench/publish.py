"""Publishing alone, timed: render and write every feed, then after 10 % of the sources changed.

    .venv/bin/python bench/publish.py [--sources 1000] [--profile first|changed|all]

Fills a state with a first refresh of the generated sources (benchmarks/documents.py, served
by the test origin in this process, no latency), then times, in this process:

- ``all``: ``Publisher.publish`` of every feed into an empty output folder (the first run's
  rendering and writing; ms per feed);
- ``changed``: a refresh after 10 % of the sources got 3 new stories each (fetching and
  parsing included), and the publish within it;
- ``unchanged``: ``Publisher.publish`` again with nothing changed.

Prints wall time, CPU time (of this process, and with the worker processes it publishes in)
and the peak resident size of this process; ``--profile`` prints the top functions of one of
them by cumulative CPU time. The workers are started before anything is timed. With
``--keep``, the output of ``all`` is copied to ``after-publish`` in that folder (to compare
with ``diff -r``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.documents import (
    CHANGE_STEP,
    changes,
    content_type,
    document,
    sources,
    write_civicfeed_config,
)
from civicfeed import publish as publish_module
from civicfeed import work
from civicfeed.config import load_config
from civicfeed.publish import Publisher
from civicfeed.refresh import refresh
from civicfeed.store import open_store
from origin import Origin


def _workers_cpu() -> dict[int, float]:
    """CPU seconds so far of each process this one started (the workers, their fork server)."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        found[child.pid] = times.user + times.system
    return found


def timed(label: str, step: Callable[[], Any], profile: bool, per: int = 0) -> Any:
    profiler = cProfile.Profile(time.process_time) if profile else None
    before = _workers_cpu()
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = step()
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    workers = sum(spent - before.get(pid, 0.0) for pid, spent in _workers_cpu().items())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    each = f"  {1000 * cpu / per:5.2f} ms CPU per feed" if per else ""
    print(
        f"{label:<30} wall {wall:6.2f} s  cpu {cpu:6.2f} s (+ workers {workers:5.2f} s)"
        f"{each}  peak RSS {peak:5.0f} MB"
    )
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--profile", choices=("all", "changed", "unchanged"))
    parser.add_argument("--keep", type=Path, help="a folder kept for another look")
    parser.add_argument("--only-all", action="store_true", help="time publishing all only")
    args = parser.parse_args()
    origin = Origin().start()
    chosen = sources(args.sources)
    try:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="civicfeed-bench-"))
        path = write_civicfeed_config(
            folder,
            lambda source: origin.url(source.path),
            chosen,
            per_host=16,
            concurrency=16,
            timeout=300,
        )
        for source in chosen:
            origin.set(source.path, document(source, 0), content_type=content_type(source))
        config = load_config(path)
        print(f"{args.sources} sources and one aggregate of them all")
        assert config.state.path is not None
        state = config.state.path.parent
        saved = folder / "after-first"
        if saved.exists():  # --keep: the state after the first refresh, kept from before
            shutil.rmtree(state, ignore_errors=True)
            shutil.copytree(saved, state)
        else:
            timed("first refresh", lambda: asyncio.run(refresh(config)), False)
            if args.keep:
                shutil.copytree(state, saved)
        shutil.rmtree(config.output, ignore_errors=True)
        asyncio.run(work.warm_up())  # as after a refresh: the workers run already
        store = open_store(config.state)
        feeds = len(publish_module.feed_specs(config))
        timed(
            "publish all, empty output",
            lambda: Publisher(config).publish(store),
            args.profile == "all",
            feeds,
        )
        store.close()
        if args.keep:
            shutil.rmtree(folder / "after-publish", ignore_errors=True)
            shutil.copytree(config.output, folder / "after-publish")
        if args.only_all:
            return
        for i in changes(len(chosen), 10.0):
            source = chosen[i]
            origin.set(
                source.path, document(source, CHANGE_STEP), content_type=content_type(source)
            )
        timed(
            "refresh, 10 % changed", lambda: asyncio.run(refresh(config)), args.profile == "changed"
        )
        store = open_store(config.state)
        timed(
            "publish, nothing changed",
            lambda: Publisher(config).publish(store),
            args.profile == "unchanged",
        )
        store.close()
    finally:
        origin.stop()


if __name__ == "__main__":
    main()
