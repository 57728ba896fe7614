"""What an operator reads: fetch errors in words with the host, the closing summary of a
refresh, and times in the configured zone with their offset."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from civicfeed.cli import main
from civicfeed.clock import for_people
from civicfeed.errors import FetchError
from civicfeed.fetch import Fetcher
from conftest import write_sources
from origin import Origin


def _fetch_error(url: str) -> FetchError:
    async def go() -> FetchError:
        async with Fetcher(retries=0, trusted=["127.0.0.1", "localhost"]) as fetcher:
            try:
                await fetcher.fetch(url, timeout=5)
            except FetchError as exc:
                return exc
        raise AssertionError("the fetch succeeded")

    return asyncio.run(go())


def test_connection_errors_name_the_host_and_the_reason_in_words() -> None:
    closed = Origin()
    port = closed.port
    closed.server.server_close()
    refused = _fetch_error(f"http://127.0.0.1:{port}/feed")
    assert str(refused) == (
        "cannot connect to 127.0.0.1: connection refused (nothing listens on that port)"
    )
    assert refused.kind == "connect"
    unknown = _fetch_error("http://www.herne.invalid/")  # .invalid never resolves (RFC 6761)
    assert str(unknown).startswith("cannot connect to www.herne.invalid: name ")
    assert "Errno" not in str(unknown)
    assert unknown.kind == "dns"


def test_times_for_people_carry_the_zone_offset() -> None:
    moment = datetime(2026, 7, 1, 10, 30, 5, tzinfo=UTC)
    assert for_people(moment, ZoneInfo("Europe/Berlin")) == "2026-07-01 12:30 +02:00"
    assert for_people(moment, ZoneInfo("UTC"), seconds=True) == "2026-07-01 10:30:05 +00:00"


def test_refresh_ends_with_failures_one_per_line_and_a_summary(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    sources = "".join(
        f"  - id: kaputt-{n}\n    title: Kaputt {n}\n    url: {origin.url(f'/gone-{n}.rss')}\n"
        for n in range(3)
    )
    config = write_sources(
        tmp_path,
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        "    html: {item: article.news-teaser, title: h3, date: .news-date, link: a.more}\n"
        + sources,
        defaults="",
        base_url=None,  # the warning about it is part of the output checked
    )
    assert main(["refresh", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("civicfeed: warning: base_url is not set")
    assert err[1:] == [
        "civicfeed: kaputt-0: HTTP 404 Not Found from 127.0.0.1",
        "civicfeed: kaputt-1: HTTP 404 Not Found from 127.0.0.1",
        "civicfeed: kaputt-2: HTTP 404 Not Found from 127.0.0.1",
        "civicfeed: 4 source(s): 1 ok (5 new, 0 updated), 3 failed; 1 feed(s) rewritten",
    ]


def test_a_source_never_fetched_writes_no_feed_and_the_index_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = Origin()
    port = closed.port
    closed.server.server_close()  # nothing listens: as when the portal cannot be reached
    config = write_sources(
        tmp_path,
        f"  - id: herne\n    title: Herne\n    url: http://127.0.0.1:{port}/herne/\n",
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [herne]\n",
        defaults="",
        base_url=None,
    )
    assert main(["refresh", "--config", str(config)]) == 1
    capsys.readouterr()
    feeds = tmp_path / "feeds"
    assert sorted(p.name for p in feeds.iterdir()) == [
        "alle.atom",
        "alle.html",
        "alle.json",
        "alle.rss",
        "feed.xsl",
        "feeds.opml",
        "index.html",
    ]  # no herne.* at all
    index = (feeds / "index.html").read_text()
    assert (
        "Noch nicht abgerufen: cannot connect to 127.0.0.1: connection refused "
        "(nothing listens on that port)" in index
    )
    assert 'href="herne.rss"' not in index
    # the empty aggregate is dated when it was written, not 1 January 1970
    rss = (feeds / "alle.rss").read_text()
    assert "1970" not in rss
    assert f"<lastBuildDate>{datetime.now(ZoneInfo('Europe/Berlin')):%a, %d %b %Y}" in rss
    assert "1970" not in (feeds / "alle.atom").read_text()
    assert "1970" not in (feeds / "feeds.opml").read_text()
    assert 'xmlUrl="herne.rss"' not in (feeds / "feeds.opml").read_text()
