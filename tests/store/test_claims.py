"""A source is refreshed by one process at a time: its lease, taken in the store, on every
backend. Here another process holds it (taken through the store as a worker would): a
refresh that shares the state leaves the source to it; `civicfeed refresh`, which holds the
state's lock, knows that no other refresh runs and takes over what a killed one left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.refresh import refresh
from civicfeed.store import open_store
from origin import Origin


def test_a_source_another_process_is_refreshing_is_left_to_it(
    state: str,
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
        f"  - id: dortmund\n    title: Dortmund\n    url: {origin.url('/dortmund.rss')}\n",
        top=f"state: {state}\n",
    )
    now = datetime.now(UTC)
    with closing(open_store(state)) as store:
        assert store.claim("source:herne", "elsewhere", until=now + timedelta(hours=1), now=now)
    report = asyncio.run(refresh(load_config(config), exclusive=False))
    (herne,) = [r for r in report.results if r.source_id == "herne"]
    assert herne.warnings == ("being refreshed by another process: left to it",)
    assert origin.hits("/herne/") == []  # not fetched a second time at once
    assert len(origin.hits("/dortmund.rss")) == 1
    with closing(open_store(state)) as store:
        assert "herne" not in store.entry_counts()
        assert store.entry_counts()["dortmund"] > 0
        # the other process died: once its lease expires, the source is refreshed again
        assert store.claim("source:herne", "elsewhere", until=now, now=now)
    asyncio.run(refresh(load_config(config), exclusive=False))
    assert len(origin.hits("/herne/")) == 1
    with closing(open_store(state)) as store:
        assert store.entry_counts()["herne"] > 0
        # and the refresh gave its own lease back: anyone may take it now
        assert store.claim("source:herne", "next", until=now + timedelta(hours=1), now=now)


def test_a_refresh_holding_the_state_lock_takes_over_a_killed_runs_leases(
    state: str,
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n",
        top=f"state: {state}\n",
    )
    now = datetime.now(UTC)
    with closing(open_store(state)) as store:  # a killed run's lease, hours from expiring
        assert store.claim("source:herne", "killed", until=now + timedelta(hours=1), now=now)
    assert main(["refresh", "--config", str(config)]) == 0
    assert "left to it" not in capsys.readouterr().out
    assert len(origin.hits("/herne/")) == 1
    with closing(open_store(state)) as store:
        assert store.entry_counts()["herne"] > 0
