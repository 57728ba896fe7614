"""`civicfeed demo`: the whole product on this computer, without internet access.

A copy of a few city pages and feeds (package data in ``site/``: a Herne-style listing with
detail pages, a partner city's windows-1252 RSS that republishes one Herne story, an Atom
feed) is served on a loopback port; a configuration for them is written into a folder; the
sources are refreshed once; then the feeds and the index are served, and the addresses to
open and to paste into a feed reader are printed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from typing import TextIO

from ..config import load_config
from ..refresh import SourceResult, refresh
from ..server import FeedServer, check_listen, static_app
from ..service import EventLog, serve_only

__all__ = ["CONFIG_NAME", "demo_config", "run_demo"]

CONFIG_NAME = "sources.yaml"
_TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


def demo_config(origin: str) -> str:
    """The configuration of the sample, its sources at ``origin`` (http://127.0.0.1:port)."""
    return f"""# civicfeed demo: a copy of city pages and feeds, served on this computer at
# {origin}/ while `civicfeed demo` runs. Rewritten by every `civicfeed demo`;
# copy it elsewhere to experiment.
timezone: Europe/Berlin
title: civicfeed-Demo – Meldungen als Feeds
output: feeds
state: state/state.db
sources:
  - id: herne
    title: Stadt Herne (Beispiel)
    url: {origin}/herne/
    tags: [ruhr]
    html:
      item: article.news-teaser
      title: h3
      date: .news-date
      link: a.more
      summary: .news-text
      title_remove: '^mehr zur Meldung:'
      detail_date: "#content"      # an item without a date: read it from its page
  - id: dortmund
    title: Stadt Dortmund (Beispiel)
    url: {origin}/dortmund.rss     # RSS in windows-1252
    tags: [ruhr]
  - id: muelheim
    title: Stadt Mülheim an der Ruhr (Beispiel)
    url: {origin}/muelheim.atom    # Atom
    tags: [ruhr]
feeds:
  - id: ruhr
    title: Ruhrgebiet – alle Meldungen
    description: Herne, Dortmund und Mülheim in einem Feed; doppelte Meldungen nur einmal
    tags: [ruhr]
"""


async def run_demo(
    folder: Path,
    listen: tuple[str, int],
    out: TextIO,
    log: EventLog,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Serve the sample, write the configuration, refresh, then serve the feeds until
    ``stop`` (SIGINT or SIGTERM)."""
    check_listen(*listen)  # an address in use is said before anything runs
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with as_file(files(__package__).joinpath("site")) as site:
        sample = FeedServer(static_app(site, _TYPES), "127.0.0.1", 0)
        serving = asyncio.create_task(sample.serve())
        try:
            while not sample.started and not serving.done():
                await asyncio.sleep(0.02)
            origin = f"http://127.0.0.1:{sample.port}"
            path = folder / CONFIG_NAME
            path.write_text(demo_config(origin), encoding="utf-8")
            print(f"civicfeed demo: sample city pages and feeds at {origin}/", file=out)
            print(f"configuration: {path}", file=out, flush=True)
            config = load_config(path)
            log.zone = config.tz

            def shown(result: SourceResult) -> None:
                print(result.describe(), file=out, flush=True)

            report = await refresh(config, on_result=shown)
            for error in report.write_errors:
                print(f"civicfeed: {error}", file=out)

            def ready(port: int) -> None:
                base = f"http://{_shown_host(listen[0])}:{port}/"
                print(
                    f"\nfeeds written to {config.output}/ and served:\n"
                    f"  open in a browser:         {base}\n"
                    f"  paste into a feed reader:  {base}ruhr.rss  (all three cities)\n"
                    f"  every feed, for import:    {base}feeds.opml\n"
                    "Stop with Ctrl-C. For the real sources: `civicfeed refresh` with the "
                    "repository's sources.yaml.",
                    file=out,
                    flush=True,
                )
                if on_ready is not None:
                    on_ready(port)

            return await serve_only(config, listen, log, stop, on_listening=ready)
        finally:
            sample.stop()
            await asyncio.wait([serving], timeout=5)


def _shown_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
