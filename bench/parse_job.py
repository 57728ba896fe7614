"""One parsing worker's job, timed: extraction and normalisation per document.

    .venv/bin/python bench/parse_job.py [--documents 20] [--rounds 5] [--profile rss|html]

Runs ``refresh.read_document`` (what a parsing worker does with a fetched document: extract,
then normalise) in this process on the benchmark's generated documents
(benchmarks/documents.py: RSS 2.0 feeds and HTML listings read with the benchmark's
selectors, 30 items and 20-60 KB each), the feeds and the listings apart. Prints CPU
milliseconds per document, the best of ``--rounds`` rounds, each with the caches that are keyed
by a document's text (dates, hosts, links, XML-safe strings) emptied first, and once more with
them left as the rounds before left them. ``--profile``: the top functions of one more round
of that kind of document by cumulative CPU time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.documents import sources
from benchmarks.floors import fetched_documents
from civicfeed.config import Source
from civicfeed.models import Fetched
from civicfeed.refresh import read_document

# modules whose functools caches hold what documents said (selectors and element names,
# compiled once per worker and bounded by the configuration, are left alone)
_KEEP = {"compile_selector", "_key_of"}


def _empty_caches() -> None:
    for name, module in list(sys.modules.items()):
        if not name.startswith("civicfeed"):
            continue
        for attribute, value in list(vars(module).items()):
            if attribute not in _KEEP and callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def _jobs(count: int) -> dict[str, list[tuple[Fetched, Source]]]:
    chosen = sources(2 * count)
    _, fetched = fetched_documents(chosen, chosen, 0)
    jobs: dict[str, list[tuple[Fetched, Source]]] = {"rss": [], "html": []}
    for source, job in zip(chosen, fetched, strict=True):
        jobs[source.kind].append(job)
    return jobs


def _round(jobs: list[tuple[Fetched, Source]], zone: Any) -> float:
    start = time.process_time()
    for fetched, source in jobs:
        read_document(fetched, source, zone, "dmy")
    return time.process_time() - start


def _best(work: Callable[[], float], rounds: int, empty: bool) -> float:
    best = float("inf")
    for _ in range(rounds):
        if empty:
            _empty_caches()
        best = min(best, work())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/parse_job.py", description=__doc__)
    parser.add_argument("--documents", type=int, default=20, help="of each kind (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the best counts")
    parser.add_argument("--profile", choices=("rss", "html"), default="")
    args = parser.parse_args()
    jobs = _jobs(args.documents)
    zone = ZoneInfo("Europe/Berlin")  # the benchmark's configuration's
    for kind in ("rss", "html"):
        documents = jobs[kind]
        size = sum(len(f.content) for f, _ in documents) / len(documents) / 1024
        _round(documents, zone)  # imports, compiled selectors
        cold = _best(lambda d=documents: _round(d, zone), args.rounds, True)
        warm = _best(lambda d=documents: _round(d, zone), args.rounds, False)
        label = "RSS 2.0 feeds" if kind == "rss" else "HTML listings"
        print(
            f"{label}: {len(documents)} documents, {size:.0f} KB on average: "
            f"{cold / len(documents) * 1000:.2f} ms per document, caches emptied per round; "
            f"{warm / len(documents) * 1000:.2f} ms with them kept"
        )
    if args.profile:
        _empty_caches()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        _round(jobs[args.profile], zone)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())


if __name__ == "__main__":
    main()
