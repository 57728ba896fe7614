"""A whole refresh called from this process, over loopback HTTP; prints figures.

    .venv/bin/python bench/refresh.py [--sources 200]

The side-by-side benchmark is ``python -m benchmarks`` (an origin process of its own, reader
and the floor beside civicfeed, the parsing workers' CPU and memory counted); this calls
``civicfeed.refresh`` on the same generated sources (benchmarks/documents.py) from within this
process, with the test origin's threads beside it. It reports, for a first run (everything
new), a second run with changed content and a third run answered by 304: wall time, CPU time
and CPU per source, and the peak memory of this process (not of the parsing workers); then the
memory under a 50 MB response cut at ``max_bytes``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.documents import content_type, document, sources, write_civicfeed_config
from civicfeed.config import load_config
from civicfeed.refresh import refresh
from origin import Origin


def serve(origin: Origin, count: int, version: int) -> None:
    for source in sources(count):
        origin.set(source.path, document(source, version), content_type=content_type(source))


def measure(label: str, config_path: Path, sources: int) -> None:
    config = load_config(config_path)
    wall, cpu = time.perf_counter(), time.process_time()
    report = asyncio.run(refresh(config))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    outcomes: dict[str, int] = {}
    for result in report.results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:<28} wall {wall:6.2f} s  cpu {cpu:6.2f} s  cpu/source {1000 * cpu / sources:6.1f}"
        f" ms  files written {len(report.written):4d}  peak RSS {peak:6.0f} MB  {outcomes}"
    )


def oversized(origin: Origin, folder: Path) -> None:
    """Peak memory while a 50 MB response is cut at max_bytes (10 MB)."""
    chunk = b"<p>" + b"x" * 65533

    def fifty_megabytes(handler) -> None:  # type: ignore[no-untyped-def]
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        try:
            for _ in range(50 * 2**20 // len(chunk)):
                handler.wfile.write(chunk)
        except OSError:
            pass

    origin.routes["/big/"] = fifty_megabytes
    path = folder / "big.yaml"
    path.write_text(
        f"sources:\n  - id: big\n    title: Big\n    url: {origin.url('/big/')}\n"
        "    max_bytes: 10MB\n    html: auto\n",
        encoding="utf-8",
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = time.perf_counter()
    report = asyncio.run(refresh(load_config(path)))
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"50 MB response, max_bytes 10 MB: {report.results[0].error}; wall {wall:.2f} s; "
        f"peak RSS grew by {max(after - before, 0):.0f} MB (to {after:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=200)
    args = parser.parse_args()
    origin = Origin().start()
    try:
        folder = Path(tempfile.mkdtemp(prefix="civicfeed-bench-"))
        config = write_civicfeed_config(
            folder,
            lambda source: origin.url(source.path),
            sources(args.sources),
            per_host=16,
            concurrency=16,
            timeout=300,
        )
        print(f"{args.sources} sources (half HTML listings, half RSS; 30 items, 20-60 KB each)")
        serve(origin, args.sources, version=0)
        measure("first run (all new)", config, args.sources)
        serve(origin, args.sources, version=3)
        measure("second run (3 new each)", config, args.sources)
        measure("third run (304 everywhere)", config, args.sources)
        oversized(origin, folder)
    finally:
        origin.stop()


if __name__ == "__main__":
    main()
