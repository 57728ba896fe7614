"""One bad item never fails its source: dates outside 1900–2200 or impossible, links that no
request can be made to, detail pages that redirect to data: — the item is dealt with (its date
unknown, its link dropped) or skipped, with a warning naming it, and its siblings are stored."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from civicfeed.dedup import Story
from civicfeed.render import FeedInfo, render_atom, render_json, render_rss
from civicfeed.render.model import in_zone
from conftest import BASE
from feedcheck import ATOM, check_atom, check_rss, rss_items
from oldstore import downgrade
from origin import Origin
from store.builders import make_entry
from test_refresh import refresh

ATOM_ENTRY = """<entry><title>{title}</title><id>urn:x:{number}</id>
<link href="{link}"/><updated>{date}</updated><summary>Text {number}</summary></entry>"""

BAD_DATES = {
    "Jahr 9999": "9999-12-31T23:59:59Z",
    "Jahr 1": "0001-01-01T00:00:00Z",
    "Jahr 1 mit Zone": "0001-01-01T00:00:00+01:00",
    "Jahr 9999 mit Zone": "9999-12-31T23:59:59-12:00",
    "Am 31. Februar": "2024-02-31T10:00:00Z",
    "Vor 1893": "1850-06-01T12:00:00Z",
}
BAD_LINKS = {"Kaputter Name": "http://xn--/", "Kaputter Port": "http://example.org:99999/x"}


def atom(entries: list[tuple[str, str, str]]) -> str:
    body = "".join(
        ATOM_ENTRY.format(title=title, number=number, link=link, date=date)
        for number, (title, link, date) in enumerate(entries, start=1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Stadt</title><id>urn:x:feed</id><updated>2026-06-02T10:00:00Z</updated>{body}"
        "</feed>"
    )


def stored(config: Path) -> dict[str, tuple[str, int, str | None]]:
    with sqlite3.connect(config.parent / ".civicfeed" / "state.db") as db:
        rows = db.execute("SELECT title, published, date_known, link FROM entries").fetchall()
    return {title: (published, known, link) for title, published, known, link in rows}


def test_bad_dates_and_links_in_a_feed_stay_with_their_items(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    good = [
        ("Gute Meldung eins", "https://www.example.org/1", "2026-06-01T10:00:00Z"),
        ("Gute Meldung zwei", "https://www.example.org/2", "2026-06-02T10:00:00Z"),
    ]
    bad = [
        (title, f"https://www.example.org/{n}", date)
        for n, (title, date) in enumerate(BAD_DATES.items(), start=10)
    ] + [(title, link, "2026-05-30T10:00:00Z") for title, link in BAD_LINKS.items()]
    origin.set("/stadt.atom", atom(good[:1] + bad + good[1:]), content_type="application/atom+xml")
    config = project(f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/stadt.atom')}\n")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 10 new, 0 updated, 10 items" in output
    entries = stored(config)
    assert entries["Gute Meldung eins"][:2] == ("2026-06-01T10:00:00.000000+00:00", 1)
    assert entries["Gute Meldung zwei"][:2] == ("2026-06-02T10:00:00.000000+00:00", 1)
    for title, date in BAD_DATES.items():
        # unknown: the time first seen, never year 1 or 9999, never 2 March, never 1850
        published, known, _ = entries[title]
        assert known == 0, title
        assert published.startswith(str(datetime.now().year)), (title, published)
        assert f"{title}: date {date!r} not understood; using the time it was first seen" in (
            output
        )
    for title, link in BAD_LINKS.items():
        assert entries[title] == ("2026-05-30T10:00:00.000000+00:00", 1, None)
        assert f"{title}: link {link!r} is not a usable http(s) URL" in output
    feeds = config.parent / "feeds"
    check_rss(feeds / "stadt.rss", self_url=f"{BASE}stadt.rss")  # RFC 822 offsets only
    check_atom(feeds / "stadt.atom", self_url=f"{BASE}stadt.atom")
    links = {i["title"]: i["link"] for i in rss_items(feeds / "stadt.rss")}
    assert links["Kaputter Name"] == origin.url("/stadt.atom")  # the source's own page


def redirect_to_data(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "data:text/html,<p>Meldung vom 1. Juni 2026</p>")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def test_bad_detail_links_fail_only_their_items(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    teasers = {
        "Gute Meldung": "/detail/gut.html",
        "Umleitung nach data": "/detail/data.html",
        "Kaputter Name": "http://xn--/",
        "Kaputter Port": "http://example.org:99999/x",
    }
    origin.set(
        "/liste/",
        "<html><body><main><ul>"
        + "".join(f'<li class="teaser"><a href="{h}">{t}</a></li>' for t, h in teasers.items())
        + "</ul></main></body></html>",
    )
    origin.set("/detail/gut.html", "<html><body><p class='date'>2. Juni 2026</p></body></html>")
    origin.routes["/detail/data.html"] = redirect_to_data
    rules = '{item: "li.teaser", link: a, detail_date: ".date"}'
    config = project(
        f"  - id: liste\n    title: Liste\n    url: {origin.url('/liste/')}\n    html: {rules}\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 4 new, 0 updated, 4 items" in output
    entries = stored(config)
    assert entries["Gute Meldung"][:2] == ("2026-06-01T22:00:00.000000+00:00", 1)
    _, known, link = entries["Umleitung nach data"]
    assert known == 0
    assert link == origin.url("/detail/data.html")
    assert f"detail page {origin.url('/detail/data.html')}:" in output
    assert entries["Kaputter Name"][1:] == (0, None)
    assert entries["Kaputter Port"][1:] == (0, None)
    assert "Kaputter Name: link 'http://xn--/' is not a usable http(s) URL" in output
    # no request is attempted for a link that cannot be requested
    assert "detail page http://xn--/" not in output
    assert "detail page http://example.org:99999/x" not in output
    check_rss(config.parent / "feeds" / "liste.rss", self_url=f"{BASE}liste.rss")


def test_stored_dates_outside_the_range_are_repaired_by_a_migration(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set(
        "/stadt.atom",
        atom([("Meldung", "https://www.example.org/1", "2026-06-01T10:00:00Z")]),
        content_type="application/atom+xml",
    )
    config = project(f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/stadt.atom')}\n")
    assert refresh(config, capsys)[0] == 0
    state = config.parent / ".civicfeed" / "state.db"
    with sqlite3.connect(state) as db:  # as an older civicfeed stored it
        db.execute("UPDATE entries SET published = '1850-06-01T12:00:00.000000+00:00'")
    db.close()
    downgrade(state, 3)
    (config.parent / "feeds" / "stadt.rss").unlink()
    assert refresh(config, capsys)[0] == 0
    published, known, _ = stored(config)["Meldung"]
    assert known == 0
    assert published.startswith(str(datetime.now().year))
    check_rss(config.parent / "feeds" / "stadt.rss", self_url=f"{BASE}stadt.rss")


def test_rendering_never_writes_a_local_mean_time_offset() -> None:
    # Europe/Berlin before 1893 is local mean time, +00:53:28: neither RFC 822 nor RFC 3339
    old = datetime(1850, 6, 1, 12, tzinfo=UTC)
    entry = make_entry(
        "urn:x:1",
        "s",
        title="Alte Meldung",
        link="https://example.org/1",
        published=old,
        summary="",
    )
    info = FeedInfo(id="s", title="Quelle", description="Meldungen", home="https://example.org/")
    stories = [Story(id="urn:x:1", entry=entry, origins=(), updated=old)]
    zone = ZoneInfo("Europe/Berlin")
    rss = etree.fromstring(render_rss(info, stories, zone))
    assert rss.findtext("channel/item/pubDate") == "Sat, 01 Jun 1850 12:00:00 +0000"
    atom = etree.fromstring(render_atom(info, stories, zone))
    assert atom.findtext(f"{ATOM}entry/{ATOM}published") == "1850-06-01T12:00:00+00:00"
    item = json.loads(render_json(info, stories, zone))["items"][0]
    assert item["date_published"] == "1850-06-01T12:00:00+00:00"
    # a date after 1893 keeps the zone's own offset
    assert in_zone(datetime(2026, 6, 1, 10, tzinfo=UTC), zone).isoformat().endswith("+02:00")
