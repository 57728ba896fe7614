"""Rendering alone, timed: CPU milliseconds per feed for each format, and an aggregate's pages.

    .venv/bin/python bench/render.py [--feeds 200] [--rounds 3] [--aggregate 100,1000]

The feeds are the benchmark's generated RSS sources (benchmarks/documents.py: 30 items,
20-60 KB each), read, normalised and merged as a refresh does, and described as publish.py
describes a source's feed. Each feed is rendered in the order publishing renders it (RSS,
Atom, JSON Feed, the HTML page, each scrubbing its input as its last guard); the figures are
the best of ``--rounds`` passes over all feeds, in CPU ms per feed.

``--aggregate``: for each number of sources, one aggregate of all their stories (30 each),
cut into archive pages of 100 stories as publishing does (max_entries 100), every page
rendered as RSS and Atom: CPU ms per page and µs per story, which stay flat when the cost
grows linearly with the aggregate.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.documents import rss_feed
from civicfeed.dedup import Story, merge_stories, plan_source
from civicfeed.extract.feed import extract_feed
from civicfeed.models import Entry, Fetched
from civicfeed.normalise import normalise
from civicfeed.render import (
    Archive,
    FeedInfo,
    SourceRef,
    render_atom,
    render_json,
    render_preview,
    render_rss,
)

ZONE = ZoneInfo("Europe/Berlin")
BASE = "https://feeds.example.org/"
NOW = datetime(2026, 11, 25, tzinfo=UTC)
PAGE = 100


def source_entries(index: int) -> tuple[SourceRef, list[Entry]]:
    url = f"https://stadt{index}.example/presse/feed.rss"
    fetched = Fetched(
        url,
        200,
        MappingProxyType({"content-type": "application/rss+xml"}),
        rss_feed(index, 0),
    )
    source_id = f"stadt{index}"
    candidates = []
    for item in extract_feed(fetched).items:
        candidate, _ = normalise(item, source_id=source_id, base_url=url, zone=ZONE)
        if candidate is not None:
            candidates.append(candidate)
    counter = iter(range(1, 1_000_000))
    plan = plan_source(
        [], candidates, now=NOW, zone=ZONE, new_id=lambda: f"urn:{source_id}:{next(counter)}"
    )
    home = f"https://stadt{index}.example/presse/"
    ref = SourceRef(
        id=source_id,
        title=f"Stadt {index} – Pressemitteilungen",
        page=home,
        atom_id=f"{BASE}{source_id}.atom",
        atom_url=f"{BASE}{source_id}.atom",
        rss_url=f"{BASE}{source_id}.rss",
    )
    return ref, plan.new


def source_feed(ref: SourceRef, entries: Sequence[Entry]) -> tuple[FeedInfo, list[Story]]:
    info = FeedInfo(
        id=ref.id,
        title=ref.title,
        description=f"Meldungen: {ref.title}",
        home=ref.page,
        base_url=BASE,
        sources=MappingProxyType({ref.id: ref}),
        hub="https://hub.example.org/",
    )
    return info, merge_stories(entries, [ref.id], ZONE)


FORMATS: tuple[tuple[str, Callable[[FeedInfo, list[Story]], bytes]], ...] = (
    ("rss", lambda info, stories: render_rss(info, stories, ZONE, Archive(None, 0))),
    ("atom", lambda info, stories: render_atom(info, stories, ZONE, Archive(None, 0))),
    ("json", lambda info, stories: render_json(info, stories, ZONE)),
    ("html", lambda info, stories: render_preview(info, stories, ZONE)),
)


def per_feed(feeds: Sequence[tuple[FeedInfo, list[Story]]], rounds: int) -> None:
    best = {name: float("inf") for name, _ in FORMATS}
    best_total = float("inf")
    size = {name: 0 for name, _ in FORMATS}
    for _ in range(rounds):
        spent = dict.fromkeys(best, 0.0)
        for info, stories in feeds:
            for name, render in FORMATS:
                start = time.process_time()
                document = render(info, stories)
                spent[name] += time.process_time() - start
                size[name] = len(document)
        for name in best:
            best[name] = min(best[name], spent[name])
        best_total = min(best_total, sum(spent.values()))
    n = len(feeds)
    stories = sum(len(s) for _, s in feeds) / n
    print(f"{n} feeds, {stories:.0f} stories each; CPU ms per feed (best of {rounds} rounds):")
    for name, _ in FORMATS:
        print(f"  {name:5} {best[name] / n * 1000:6.3f} ms   ({size[name] / 1024:.0f} KB)")
    print(f"  all   {best_total / n * 1000:6.3f} ms")


def aggregate(sources: Sequence[tuple[SourceRef, list[Entry]]], rounds: int) -> None:
    refs = {ref.id: ref for ref, _ in sources}
    info = FeedInfo(
        id="alle",
        title="Alle Meldungen",
        description="Meldungen aus allen Quellen",
        home=BASE,
        base_url=BASE,
        sources=MappingProxyType(refs),
        aggregate=True,
        hub="https://hub.example.org/",
    )
    every = [entry for _, entries in sources for entry in entries]
    stories = merge_stories(every, list(refs), ZONE)
    pages = [stories[at : at + PAGE] for at in range(0, len(stories), PAGE)]
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for number, page in enumerate(pages, start=1):
            place = Archive(number, len(pages))
            render_rss(info, page, ZONE, place)
            render_atom(info, page, ZONE, place)
        best = min(best, time.process_time() - start)
    print(
        f"  {len(sources):5} sources, {len(stories):6} stories, {len(pages):4} pages: "
        f"{best * 1000:8.1f} ms, {best / len(pages) * 1000:6.2f} ms per page (RSS + Atom), "
        f"{best / len(stories) * 1e6:5.1f} µs per story"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--aggregate", default="100,1000", help="numbers of sources, comma-separated ('': none)"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.aggregate.split(",") if n]
    wanted = max([args.feeds, *sizes])
    sources = [source_entries(index) for index in range(1, wanted + 1)]
    per_feed([source_feed(ref, entries) for ref, entries in sources[: args.feeds]], args.rounds)
    if sizes:
        print(f"aggregate pages of {PAGE} stories, CPU (best of {args.rounds} rounds):")
        for n in sizes:
            aggregate(sources[:n], args.rounds)


if __name__ == "__main__":
    main()
