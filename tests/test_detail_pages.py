"""Detail pages fairly: a page that gave no date is not read again until the listing changes,
and pages never read go first, so that every item gets its turn however many there are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicfeed.models import DetailPage
from civicfeed.refresh import MAX_DETAIL_FETCHES, detail_turns
from feedcheck import rss_items
from origin import Origin
from test_refresh import refresh

RULES = '{item: "li.teaser", link: a, detail_date: ".date"}'


def serve_listing(origin: Origin, numbers: list[int]) -> None:
    teasers = "".join(
        f'<li class="teaser"><a href="/detail/{n}.html">Meldung Nummer {n}</a></li>'
        for n in numbers
    )
    # no ETag, no Last-Modified: every run reads the listing again (a 304 would read nothing)
    origin.set("/liste/", f"<html><body><ul>{teasers}</ul></body></html>", etag=False)


def detail_reads(origin: Origin, since: int) -> list[int]:
    paths = [r.path for r in origin.requests[since:] if r.path.startswith("/detail/")]
    return sorted(int(p.split("/")[2].split(".")[0]) for p in paths)


def test_undated_detail_pages_are_read_once_per_listing_and_all_get_their_turn(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert MAX_DETAIL_FETCHES == 25
    for n in range(1, 32):  # pages that carry no date, but number 31
        date = "<p class='date'>2. Juni 2026</p>" if n == 31 else "<p>Kein Datum.</p>"
        origin.set(f"/detail/{n}.html", f"<html><body><h1>Meldung {n}</h1>{date}</body></html>")
    serve_listing(origin, list(range(1, 31)))
    config = project(
        f"  - id: liste\n    title: Liste\n    url: {origin.url('/liste/')}\n    html: {RULES}\n"
    )

    def run() -> tuple[list[int], str]:
        since = len(origin.requests)
        code, output = refresh(config, capsys)
        assert code == 0, output
        return detail_reads(origin, since), output

    first, output = run()
    assert first == list(range(1, 26))
    assert "30 items need their detail page; 25 are read now" in output
    second, _ = run()  # the same listing: the five not read yet, and no page twice
    assert second == list(range(26, 31))
    third, _ = run()  # every page was read for this listing and had no date
    assert third == []

    serve_listing(origin, [31, *range(1, 31)])  # the listing changes: a new item on top
    fourth, output = run()
    # the page never read first, then those read longest ago
    assert fourth == [*range(1, 25), 31]
    assert "31 items need their detail page; 25 are read now" in output
    fifth, _ = run()
    assert fifth == list(range(25, 31))
    assert run()[0] == []
    items = {i["title"]: i for i in rss_items(config.parent / "feeds" / "liste.rss")}
    assert items["Meldung Nummer 31"]["pubDate"] == "Tue, 02 Jun 2026 00:00:00 +0200"
    assert len(items) == 31


def test_turns_never_read_first_then_the_longest_ago() -> None:
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    pages = {
        "/failed-yesterday": DetailPage(
            "/failed-yesterday", checked=at - timedelta(days=1), failures=1
        ),
        "/read-last-week": DetailPage("/read-last-week", checked=at - timedelta(7)),
    }
    first_seen = {"/new-but-known-longer": at - timedelta(days=30), "/new": at}
    wanted = ["/failed-yesterday", "/new", "/read-last-week", "/new-but-known-longer", "/unseen"]
    assert detail_turns(wanted, pages, first_seen) == [
        "/new-but-known-longer",  # never read: the item known longest first
        "/new",
        "/unseen",  # never read and not stored yet: after those, in listing order
        "/read-last-week",  # read before: the longest ago first
        "/failed-yesterday",
    ]
