"""The units of work a queue can run one by one, on every backend: refreshing one source
stores its entries and writes nothing; publishing writes the feeds; the ping is separate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from civicfeed.config import load_config
from civicfeed.publish import Publisher
from civicfeed.refresh import SourceResult, fetcher_for, notify_hub, refresh_source
from civicfeed.store import open_store
from civicfeed.write import open_output
from origin import Origin


def test_refreshing_one_source_stores_it_and_publishing_writes_its_feeds(
    state: str, origin: Origin, project: Callable[..., Path], tmp_path: Path
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = load_config(
        project(
            f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n",
            top=f"state: {state}\n",
        )
    )
    (source,) = config.sources

    async def unit() -> tuple[SourceResult, tuple[str, ...]]:
        async with fetcher_for(config) as fetcher:
            with closing(open_store(config.state)) as store:
                result = await refresh_source(
                    config, source, store=store, fetcher=fetcher, now=datetime.now(UTC)
                )
                assert store.entry_counts()["herne"] == result.new
                output = open_output(config, store)  # the folder, or the database
                assert not output.exists("herne.rss")  # nothing written yet
                published = Publisher(config).publish(store)
                output.begin()
                assert output.exists("herne.rss")
                assert "herne.rss" in published.written
            return result, await notify_hub(config, fetcher, published.changed_feeds)

    result, hub_errors = asyncio.run(unit())
    assert result.outcome == "new"
    assert result.new > 0
    assert hub_errors == ()  # no hub configured: nothing to tell
    assert len(origin.hits("/herne/")) == 1
