"""Benchmark: a whole refresh of many sources over loopback HTTP; prints figures.

    .venv/bin/python bench/refresh.py [--sources 200]

Half the sources are HTML listings (about 40 KB, 30 items), half RSS feeds (about 40 KB, 30
items), all on one loopback origin started here. It reports, for a first run (everything new),
a second run with changed content and a third run answered by 304: wall time, CPU time and CPU
per source, and the peak memory of the process. Compare the ratios within one run; absolute
times depend on the machine and its load.
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

from civicfeed.config import load_config
from civicfeed.refresh import refresh
from origin import Origin


def html_listing(source: int, version: int) -> bytes:
    rows = []
    for n in range(30):
        story = n + version
        rows.append(
            f'<article class="news-teaser"><p class="news-date">Meldung vom {1 + story % 28}. '
            f"Februar 2019</p><h3>Meldung {story} der Stadt {source}: Integration im Quartier"
            f'</h3><div class="news-text"><p>{"Ein Teaser mit etwas Text. " * 40}</p></div>'
            f'<a class="more" href="/s{source}/m{story}.html">mehr zur Meldung</a></article>'
        )
    return ("<html><body><main>" + "".join(rows) + "</main></body></html>").encode()


def rss_feed(source: int, version: int) -> bytes:
    items = []
    for n in range(30):
        story = n + version
        items.append(
            f"<item><title>Pressemitteilung {story} aus Stadt {source}</title>"
            f"<link>https://stadt{source}.example/p/{story}</link><guid>s{source}-{story}</guid>"
            f"<pubDate>Mon, {1 + story % 28:02d} Feb 2019 10:00:00 +0100</pubDate>"
            f"<description>{'Beschreibung der Meldung. ' * 45}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Stadt {source}</title><link>https://stadt{source}.example/</link>"
        f"<description>d</description>{''.join(items)}</channel></rss>"
    ).encode()


def serve(origin: Origin, sources: int, version: int) -> None:
    for s in range(sources):
        if s % 2:
            origin.set(f"/s{s}.rss", rss_feed(s, version), content_type="application/rss+xml")
        else:
            origin.set(f"/s{s}/", html_listing(s, version))


def write_config(origin: Origin, folder: Path, sources: int) -> Path:
    lines = ["timezone: Europe/Berlin", "concurrency: 16", "per_host: 16", "sources:"]
    for s in range(sources):
        if s % 2:
            lines += [
                f"  - id: s{s}",
                f"    title: Stadt {s}",
                f"    url: {origin.url(f'/s{s}.rss')}",
                "    tags: [alle]",
            ]
        else:
            lines += [
                f"  - id: s{s}",
                f"    title: Stadt {s}",
                f"    url: {origin.url(f'/s{s}/')}",
                "    tags: [alle]",
                "    html: {item: article.news-teaser, title: h3, date: .news-date, "
                "link: a.more, summary: .news-text}",
            ]
    lines += ["feeds:", "  - id: alle", "    title: Alle", "    tags: [alle]"]
    path = folder / "sources.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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
        config = write_config(origin, folder, args.sources)
        print(
            f"{args.sources} sources (half HTML listings, half RSS), 30 items and about "
            f"{len(html_listing(0, 0)) // 1000} KB / {len(rss_feed(1, 0)) // 1000} KB each"
        )
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
