"""The worker processes' start: made beside the event loop, never blocking it."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from civicfeed import work
from civicfeed.cli import main
from conftest import descendants, write_sources
from origin import Origin

FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Herne</title>'
    b"<link>https://herne.example/</link><description>d</description><item><title>Meldung"
    b"</title><link>https://herne.example/1</link><pubDate>Mon, 11 Feb 2019 10:00:00 +0100"
    b"</pubDate></item></channel></rss>"
)


@pytest.fixture
def no_workers() -> Iterator[None]:
    """No pool before the test (one left by another test would be used as it is) or after."""
    work.close()
    yield
    work.close()


def _held_start(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[str]]:
    """The pool's start made to wait until the returned event is set; where it ran, noted."""
    release, threads = threading.Event(), []
    real = work._get

    def held() -> tuple[object, Future[bool]]:
        threads.append(threading.current_thread().name)
        release.wait(30)
        return real()

    monkeypatch.setattr(work, "_get", held)
    return release, threads


def _double(n: int) -> int:
    return 2 * n


@pytest.mark.usefixtures("no_workers")
def test_the_event_loop_goes_on_while_the_workers_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # the start waits for an event only the event loop sets: on the loop's own thread it would
    # wait out its 30 s and the ticker's note would come after it
    release, threads = _held_start(monkeypatch)
    order: list[str] = []

    async def ticker() -> None:
        await asyncio.sleep(0)  # the job below has asked for the workers by now
        order.append("the loop ran while the workers started")
        release.set()

    async def job() -> int:
        result = await work.run(_double, 21, seconds=60, what="doubling")
        order.append("job done")
        return result

    async def both() -> list[int | None]:
        return await asyncio.gather(job(), ticker())

    assert asyncio.run(both()) == [42, None]
    assert order == ["the loop ran while the workers started", "job done"]
    assert threads == ["civicfeed-workers-start"]


@pytest.mark.usefixtures("no_workers")
def test_jobs_asked_for_while_the_workers_start_share_one_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release, threads = _held_start(monkeypatch)

    async def jobs() -> list[int]:
        asked = [asyncio.ensure_future(work.run(_double, n, seconds=60, what="x")) for n in (1, 2)]
        await asyncio.sleep(0.05)
        assert not any(job.done() for job in asked)  # waiting for the workers, not failed
        release.set()
        return await asyncio.gather(*asked)

    assert asyncio.run(jobs()) == [2, 4]
    assert threads == ["civicfeed-workers-start"]  # one start for both


@pytest.mark.usefixtures("no_workers")
def test_start_soon_returns_at_once_and_the_workers_start_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release, threads = _held_start(monkeypatch)
    work.start_soon()  # returns although the start cannot finish before `release`
    work.start_soon()  # a start under way is not made twice
    assert not work._starting().done()
    before = descendants(os.getpid())
    release.set()
    assert asyncio.run(work.run(_double, 5, seconds=60, what="x")) == 10
    assert threads == ["civicfeed-workers-start"]
    assert len(descendants(os.getpid()) - before) >= 2  # the fork server and its workers


@pytest.mark.usefixtures("no_workers")
def test_workers_closed_are_started_again_and_a_failed_start_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert asyncio.run(work.run(_double, 1, seconds=60, what="x")) == 2
    work.close()
    assert asyncio.run(work.run(_double, 2, seconds=60, what="x")) == 4
    work.close()
    real, calls = work._get, []

    def broken() -> tuple[object, Future[bool]]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no processes left")
        return real()

    monkeypatch.setattr(work, "_get", broken)
    with pytest.raises(OSError, match="no processes left"):
        asyncio.run(work.run(_double, 3, seconds=60, what="x"))
    assert asyncio.run(work.run(_double, 3, seconds=60, what="x")) == 6
    assert len(calls) == 2


def test_a_refresh_of_a_new_state_starts_the_workers_before_the_first_answer(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.set("/herne.rss", FEED, content_type="application/rss+xml", etag=True)
    config = write_sources(
        tmp_path, f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne.rss')}\n"
    )
    started: list[int] = []
    requests_then: list[int] = []

    def start_soon() -> None:
        requests_then.append(len(origin.requests))
        started.append(1)

    monkeypatch.setattr(work, "start_soon", start_soon)
    assert main(["refresh", "-q", "--config", str(config)]) == 0  # a new state: all is parsed
    assert started == [1]
    assert requests_then == [0]  # before the first request went out
    assert main(["refresh", "-q", "--config", str(config)]) == 0  # 304s: nothing to parse
    assert started == [1]
    assert main(["refresh", "-q", "--reparse", "--config", str(config)]) == 0
    assert started == [1, 1]
