"""The first refresh without publishing: where the refresh side's time goes.

    .venv/bin/python bench/refresh_phase.py [--sources 1000] [--profile OUT.prof]

Starts the benchmark's origin process (benchmarks/origin.py: N generated sources, half feeds,
half listings, 64 loopback addresses, 100 ms per request), then one child process that runs
``civicfeed.refresh`` on all of them with publishing left out, and prints its wall time, the
CPU time of the event loop's process and of the parsing workers apart, and the event loop's
peak resident memory. ``--profile``: cProfile of the event loop's process (the workers'
jobs are not in it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.documents import sources, write_civicfeed_config  # noqa: E402
from benchmarks.origin import OriginProcess  # noqa: E402
from benchmarks.run import run_child  # noqa: E402

CHILD = """
import asyncio, cProfile, resource, sys, time
import psutil
from civicfeed import publish, refresh
from civicfeed.config import load_config

def main():
    config = load_config(sys.argv[1])
    publish.Publisher.publish = lambda self, *args, **kwargs: publish.PublishReport()
    profile = cProfile.Profile() if sys.argv[2] else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    report = asyncio.run(refresh.refresh(config))
    if profile:
        profile.disable()
        profile.dump_stats(sys.argv[2])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    workers = sum(sum(p.cpu_times()[:2]) for p in psutil.Process().children(recursive=True))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall {wall:.2f} s, event loop CPU {cpu:.2f} s, workers' CPU {workers:.2f} s, "
          f"event loop peak RSS {peak:.0f} MB, failed {len(report.failed)}")

if __name__ == "__main__":
    main()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--profile", default="", help="write the event loop's cProfile here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="civicfeed-phase-"))
    child = folder / "child.py"
    child.write_text(CHILD, encoding="utf-8")
    with OriginProcess(args.sources) as origin:
        config = write_civicfeed_config(
            folder, origin.url, sources(args.sources), per_host=2, concurrency=None, timeout=900
        )
        ran = run_child(
            [sys.executable, str(child), str(config), args.profile],
            log=folder / "child.log",
            timeout=1800,
            cwd=ROOT,
        )
    lines = ran.output.strip().splitlines()
    print(f"{args.sources} sources, first refresh without publishing: {lines[-1] if lines else ''}")
    if ran.code != 0:
        raise SystemExit(ran.output[-2000:])


if __name__ == "__main__":
    main()
