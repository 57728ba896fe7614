"""Parse-only micro-benchmark of the feed paths: feedparser, the fast path, and civicfeed's
whole feed extraction (prolog scan, path choice, conversion to items) with and without it.

    .venv/bin/python -m benchmarks.parse [--documents 20] [--repeat 5] [--corpus]

The documents are the benchmark's own RSS 2.0 feeds (documents.rss_feed: 30 items, 20-60 KB);
with --corpus also the documents of tests/corpus/feeds that the fast path reads. Prints CPU
milliseconds per document (the best of --repeat rounds, each with the cache of date readings
emptied) for each way of reading them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from unittest import mock

import feedparser

from civicfeed.extract import fastfeed
from civicfeed.extract import feed as feed_module
from civicfeed.extract.feed import extract_feed, prepared
from civicfeed.models import Fetched

from .documents import rss_feed

CORPUS = Path(__file__).parent.parent / "tests" / "corpus" / "feeds"


def _generated(count: int) -> list[Fetched]:
    headers = MappingProxyType({"content-type": "application/rss+xml"})
    return [
        Fetched(f"http://127.0.0.1/s{2 * i + 1}.rss", 200, headers, rss_feed(2 * i + 1, 0))
        for i in range(count)
    ]


def _corpus() -> list[Fetched]:
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
    documents = []
    for name, entry in sorted(manifest.items()):
        if name.endswith(".json"):
            continue
        headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
        fetched = Fetched(
            f"https://corpus.example/feeds/{name}",
            200,
            MappingProxyType(headers),
            (CORPUS / name).read_bytes(),
        )
        if feed_module.read_fast(*prepared(fetched)) is not None:
            documents.append(fetched)
    return documents


def _feedparser(fetched: Fetched) -> None:
    content, headers = prepared(fetched)
    feedparser.parse(
        content, response_headers=headers, sanitize_html=True, resolve_relative_uris=True
    )


def _fast(fetched: Fetched) -> None:
    content, headers = prepared(fetched)
    fastfeed.read(content, headers, feed_module._feedparser_date)


def _extraction_without_fast_path(fetched: Fetched) -> None:
    with mock.patch.object(feed_module, "read_fast", return_value=None):
        extract_feed(fetched)


WAYS: dict[str, Callable[[Fetched], object]] = {
    "feedparser.parse": _feedparser,
    "fastfeed.read": _fast,
    "extract_feed, fast path": extract_feed,
    "extract_feed, feedparser only": _extraction_without_fast_path,
}


def _per_document(
    read: Callable[[Fetched], object], documents: list[Fetched], rounds: int
) -> float:
    best = float("inf")
    for _ in range(rounds):
        feed_module._feedparser_date.cache_clear()  # every round reads its dates anew
        start = time.process_time()
        for fetched in documents:
            read(fetched)
        best = min(best, time.process_time() - start)
    return best / len(documents) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parse", description=__doc__)
    parser.add_argument("--documents", type=int, default=20, help="generated feeds (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds, the best counts")
    parser.add_argument("--corpus", action="store_true", help="also the corpus's plain feeds")
    args = parser.parse_args()
    sets = {"generated RSS 2.0": _generated(args.documents)}
    if args.corpus:
        sets["corpus, fast-path documents"] = _corpus()
    for label, documents in sets.items():
        size = sum(len(d.content) for d in documents) / len(documents) / 1024
        print(f"{label}: {len(documents)} documents, {size:.0f} KB on average")
        figures = {way: _per_document(read, documents, args.repeat) for way, read in WAYS.items()}
        for way, ms in figures.items():
            print(f"  {way:<32} {ms:7.2f} ms per document")
        ratio = figures["feedparser.parse"] / figures["fastfeed.read"]
        whole = figures["extract_feed, feedparser only"] / figures["extract_feed, fast path"]
        print(f"  parse {ratio:.1f}x faster; whole extraction {whole:.1f}x faster")


if __name__ == "__main__":
    main()
