"""The benchmark's other contenders, each run as a process of its own so that its CPU time and
memory are its own. Each prints one JSON line: what it did and how many sources failed.

    python -m benchmarks.contenders reader-setup DB URLS    # add the feeds (not measured)
    python -m benchmarks.contenders reader DB [--workers 16]
    python -m benchmarks.contenders fetch STATE URLS [--concurrency 16] [--per-host 2]
    python -m benchmarks.contenders parse --sources N [--addresses 64] [--changed PERCENT]
    python -m benchmarks.contenders profile [--clock cpu|wall] OUT ARGS   # civicfeed ARGS

``URLS`` is a file with one URL a line. ``fetch`` is the network floor: an httpx async loop
that only fetches (conditional requests with the validators kept in ``STATE``, bodies read in
full and dropped) at civicfeed's limits, with a connection pool per host as civicfeed keeps.
``parse`` is the parsing floor: feedparser on the feeds and lxml with the listings' CSS
selectors on the listings, in this one process, for the same documents the origin serves (all
of them, or with ``--changed`` the changed ones only); it reports the CPU time of the parsing
alone, and beside it the CPU time of civicfeed's own parsing and, on a first run, rendering of
the same documents (``floors.stage_floors``). ``profile`` runs ``civicfeed ARGS`` under
cProfile (its imports included), timed by CPU time (or wall time), with the jobs civicfeed
gives its worker processes run in its own process, and writes the profile to ``OUT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def _urls(path: str) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line]


def reader_setup(db: str, urls: str) -> None:
    from reader import make_reader

    reader = make_reader(db)
    for url in _urls(urls):
        reader.add_feed(url, exist_ok=True)
    reader.close()
    _say({"feeds": len(_urls(urls))})


def reader_update(db: str, workers: int) -> None:
    from reader import make_reader

    reader = make_reader(db)
    counts: Counter[str] = Counter()
    errors: list[str] = []
    # update_feeds(workers=...) as an iterator, to count the failures; scheduled=False: every
    # feed, as `civicfeed refresh` does (by default reader skips feeds updated within the hour)
    for result in reader.update_feeds_iter(workers=workers, scheduled=False):
        if isinstance(result.value, Exception):
            counts["failed"] += 1
            errors.append(f"{result.url}: {result.value}")
        elif result.value is None:
            counts["unchanged"] += 1
        else:
            counts["updated"] += 1
            counts["new_entries"] += result.value.new
    reader.close()
    _say({**counts, "failed": counts["failed"], "errors": errors[:5]})


async def _fetch_all(
    urls: list[str], state: dict[str, dict[str, str]], concurrency: int, per_host: int
) -> Counter[str]:
    import httpx

    counts: Counter[str] = Counter()
    limit = asyncio.Semaphore(concurrency)
    hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))
    # a client (a connection pool) per host, as civicfeed keeps: one pool for all hosts polls
    # every idle connection of every host whenever it places a request, which at concurrency
    # 128 costs more CPU than the requests themselves and the floor would be no floor
    limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
    clients: dict[str, httpx.AsyncClient] = {}
    tls = httpx.create_ssl_context()  # one for all clients: each of its own loads the CAs

    def client_of(host: str) -> httpx.AsyncClient:
        client = clients.get(host)
        if client is None:
            client = clients[host] = httpx.AsyncClient(
                limits=limits, timeout=120, trust_env=False, verify=tls
            )
        return client

    async def one(url: str) -> None:
        known = state.get(url, {})
        headers = {}
        if "etag" in known:
            headers["If-None-Match"] = known["etag"]
        if "last-modified" in known:
            headers["If-Modified-Since"] = known["last-modified"]
        host = urlsplit(url).hostname or ""
        try:
            async with limit, hosts[host]:
                response = await client_of(host).get(url, headers=headers)
        except httpx.HTTPError:
            counts["failed"] += 1
            return
        counts[str(response.status_code)] += 1
        if response.status_code == 200:
            state[url] = {
                k: response.headers[k] for k in ("etag", "last-modified") if k in response.headers
            }
        elif response.status_code != 304:
            counts["failed"] += 1

    try:
        await asyncio.gather(*(one(url) for url in urls))
    finally:
        for client in clients.values():
            await client.aclose()
    return counts


def fetch(state_path: str, urls: str, concurrency: int, per_host: int) -> None:
    path = Path(state_path)
    state = json.loads(path.read_text()) if path.exists() else {}
    counts = asyncio.run(_fetch_all(_urls(urls), state, concurrency, per_host))
    path.write_text(json.dumps(state))
    _say({**counts, "failed": counts["failed"]})


def parse(count: int, addresses: int, changed: float | None) -> None:
    import feedparser
    from lxml import html
    from lxml.cssselect import CSSSelector

    from .documents import CHANGE_STEP, HTML_SELECTORS, changes, document, sources
    from .floors import stage_floors

    every = sources(count, addresses)
    if changed is None:
        chosen, version = every, 0
    else:
        chosen, version = [every[i] for i in changes(count, changed)], CHANGE_STEP
    documents = [(s.kind, document(s, version)) for s in chosen]
    item = CSSSelector(HTML_SELECTORS["item"])
    parts = [CSSSelector(HTML_SELECTORS[k]) for k in ("title", "date", "link", "summary")]
    cpu = {"rss": 0.0, "html": 0.0}
    items = 0
    for kind, body in documents:
        start = time.process_time()
        if kind == "rss":
            items += len(feedparser.parse(body).entries)
        else:
            root = html.document_fromstring(body)
            for element in item(root):
                title, date, link, summary = (select(element) for select in parts)
                _ = (title[0].text_content(), date[0].text_content(), link[0].get("href"))
                _ = html.tostring(summary[0])
                items += 1
        cpu[kind] += time.process_time() - start
    _say(
        {
            "documents": len(documents),
            "items": items,
            "feedparser_cpu": round(cpu["rss"], 4),
            "lxml_cpu": round(cpu["html"], 4),
            "failed": 0,
        }
        | stage_floors(count, addresses, changed)
    )


def profile(out: str, clock: str, argv: list[str]) -> None:
    import cProfile

    profiler = cProfile.Profile(time.process_time if clock == "cpu" else time.perf_counter)
    profiler.enable()
    try:
        from civicfeed.cli import main as civicfeed

        _inline_work()
        code = civicfeed(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(out)
    _say({"exit": code, "failed": 0})


def _inline_work() -> None:
    """civicfeed's worker processes' jobs run in this process instead, on the event loop, so
    that the profiler sees them (what handing them over costs is then not in the profile)."""
    try:
        from civicfeed import work
    except ImportError:  # a civicfeed that parses in its own process anyway
        return

    async def run(function: Any, *args: Any, seconds: float, what: str) -> Any:
        return function(*args)

    async def warm_up() -> None:
        return None

    work.run = run  # type: ignore[assignment]
    work.warm_up = warm_up  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("reader-setup")
    setup.add_argument("db")
    setup.add_argument("urls")
    peer = commands.add_parser("reader")
    peer.add_argument("db")
    peer.add_argument("--workers", type=int, default=16)
    floor = commands.add_parser("fetch")
    floor.add_argument("state")
    floor.add_argument("urls")
    floor.add_argument("--concurrency", type=int, default=16)
    floor.add_argument("--per-host", type=int, default=2)
    parsing = commands.add_parser("parse")
    parsing.add_argument("--sources", type=int, required=True)
    parsing.add_argument("--addresses", type=int, default=64)
    parsing.add_argument("--changed", type=float)
    profiled = commands.add_parser("profile")
    profiled.add_argument("out")
    profiled.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    profiled.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "profile":
        profile(args.out, args.clock, args.argv)
    elif args.command == "reader-setup":
        reader_setup(args.db, args.urls)
    elif args.command == "reader":
        reader_update(args.db, args.workers)
    elif args.command == "fetch":
        fetch(args.state, args.urls, args.concurrency, args.per_host)
    else:
        parse(args.sources, args.addresses, args.changed)


if __name__ == "__main__":
    main()
