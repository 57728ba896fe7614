"""End to end: sources.yaml in, feeds out, over real loopback HTTP and a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from civicfeed.cli import main
from civicfeed.errors import StoreError
from civicfeed.models import Entry
from civicfeed.publish import Publisher
from civicfeed.refresh import _StoreCalls
from civicfeed.store.sqlite import SQLiteStore
from conftest import BASE
from feedcheck import atom_ids, check_atom, check_rss, rss_items
from origin import Origin

SHARED = (
    "Städtekooperation feiert „10 Jahre Integration.Interkommunal“ – Gemeinsam stark für "
    "Integration"
)


def listing(items: list[tuple[str, str, str]]) -> str:
    """A Herne-like listing page: (date line, title, detail path) per item."""
    teasers = "\n".join(
        f"""<article class="news-teaser"><p class="news-date">{date}</p>
        <h3 class="news-title">{title}</h3><div class="news-text"><p>Text zu {title}.</p></div>
        <a class="more" href="{path}">mehr zur Meldung: {title}</a></article>"""
        for date, title, path in items
    )
    return f"""<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">
    <script src="/tracking.js"></script></head><body>
    <div class="cookie-banner">Wir verwenden Cookies.</div>
    <main><h1>Pressemeldungen</h1><section class="news-list">{teasers}</section></main>
    </body></html>"""


HERNE_RULES = (
    "{item: article.news-teaser, title: h3, date: .news-date, link: a.more, summary: .news-text}"
)


def herne_source(origin: Origin, path: str = "/herne/") -> str:
    return (
        f"  - id: herne\n    title: Integrationsportal der Stadt Herne\n"
        f"    url: {origin.url(path)}\n    tags: [herne]\n    html: {HERNE_RULES}\n"
    )


def refresh(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["refresh", "--config", str(config), *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.out + out.err


def test_herne_listing_becomes_valid_rss_and_atom(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(herne_source(origin))
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "herne" in output
    assert "new: 5 new, 0 updated, 5 items" in output
    feeds = config.parent / "feeds"
    check_rss(feeds / "herne.rss", self_url=f"{BASE}herne.rss")
    check_atom(feeds / "herne.atom", self_url=f"{BASE}herne.atom")
    items = rss_items(feeds / "herne.rss")
    assert [i["title"] for i in items] == [
        "Demokratiekonferenz: Was braucht Wanne?",
        SHARED,
        "Wie Geflüchtete in Schule und Arbeit kommen",
        "Begleiter für Kultur und Freizeitangebote gesucht",
        "Elf Workshops zwischen Integration und Inklusion",
    ]
    assert items[0]["link"] == origin.url(
        "/Meldungen/News-Detailansicht_27101.html?ref=integration&p=1"
    )
    assert items[0]["pubDate"] == "Mon, 11 Feb 2019 00:00:00 +0100"
    summary = items[1]["description"]
    assert 'href="' + origin.url("/Dortmund/Rathaus.html") + '"' in summary
    for bad in ("<script", "onmouseover", "javascript:", "Cookies"):
        assert bad not in summary
    assert origin.hits("/herne/")[0].headers["User-Agent"].startswith("civicfeed/")


def test_one_story_from_four_sources_is_one_entry_in_the_aggregate(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    origin.serve_fixture("/muelheim.atom", "muelheim.atom", content_type="application/atom+xml")
    origin.serve_fixture("/bochum/presse.php", "bochum-latin1.html", content_type="text/html")
    sources = herne_source(origin) + (
        f"  - id: dortmund\n    title: Stadt Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
        f"  - id: muelheim\n    title: Stadt Mülheim an der Ruhr\n"
        f"    url: {origin.url('/muelheim.atom')}\n"
        f"  - id: bochum\n    title: Stadt Bochum\n    url: {origin.url('/bochum/presse.php')}\n"
        "    html: {item: tr.eintrag, link: a.titel, date: td.datum, summary: .kurz}\n"
    )
    feeds = (
        "feeds:\n  - id: ruhr\n    title: Integration im Ruhrgebiet\n"
        "    sources: [herne, dortmund, muelheim, bochum]\n"
    )
    config = project(sources, feeds)
    code, output = refresh(config, capsys)
    assert code == 0, output
    out = config.parent / "feeds"
    for name in ("herne", "dortmund", "muelheim", "bochum", "ruhr"):
        check_rss(out / f"{name}.rss", self_url=f"{BASE}{name}.rss")
        check_atom(out / f"{name}.atom", self_url=f"{BASE}{name}.atom")
    items = rss_items(out / "ruhr.rss")
    shared = [i for i in items if "10 Jahre" in i["title"] or "10 JAHRE" in i["title"]]
    assert len(shared) == 1, [i["title"] for i in items]
    assert shared[0]["title"] == SHARED  # Herne is listed first: Herne's wording
    assert shared[0]["link"] == origin.url("/Meldungen/News-Detailansicht_27044.html")
    # 5 Herne + 1 other Dortmund + 1 other Mülheim + 2 other Bochum stories
    assert len(items) == 9
    assert len(atom_ids(out / "ruhr.atom")) == 9
    # every source's own feed still has its own copy, in its own wording
    dortmund = rss_items(out / "dortmund.rss")
    assert dortmund[1]["title"].endswith("Gemeinsam stark für Integration.")
    assert "0 €" in dortmund[1]["description"]  # windows-1252 decoded correctly


def test_history_is_kept_and_ids_never_change_across_three_states(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(herne_source(origin))
    rss = config.parent / "feeds" / "herne.rss"
    states = [
        [
            ("Meldung vom 24. Januar 2019", "Begleiter gesucht", "/m/3.html"),
            ("Meldung vom 30. Januar 2019", "Wie Geflüchtete in Schule kommen", "/m/2.html"),
            ("Meldung vom 26. November 2018", "Elf Workshops", "/m/1.html"),
        ],
        # a new item on top, one title corrected under the same link, the oldest gone
        [
            ("Meldung vom 04. Februar 2019", "Gemeinsam stark", "/m/4.html"),
            ("Meldung vom 24. Januar 2019", "Begleiter für Kultur gesucht", "/m/3.html"),
            ("Meldung vom 30. Januar 2019", "Wie Geflüchtete in Schule kommen", "/m/2.html"),
        ],
        [
            ("Meldung vom 11. Februar 2019", "Was braucht Wanne?", "/m/5.html"),
            ("Meldung vom 04. Februar 2019", "Gemeinsam stark", "/m/4.html"),
        ],
    ]
    ids_by_link: dict[str, str] = {}
    for number, state in enumerate(states):
        origin.set("/herne/", listing(state))
        code, output = refresh(config, capsys)
        assert code == 0, output
        check_rss(rss)
        for item in rss_items(rss):
            assert ids_by_link.setdefault(item["link"], item["guid"]) == item["guid"]
        if number == 1:
            assert "new: 1 new, 1 updated" in output
    titles = [i["title"] for i in rss_items(rss)]
    assert titles == [
        "Was braucht Wanne?",
        "Gemeinsam stark",
        "Wie Geflüchtete in Schule kommen",
        "Begleiter für Kultur gesucht",
        "Elf Workshops",
    ]
    assert len(ids_by_link) == 5
    with sqlite3.connect(config.parent / ".civicfeed" / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 5


def test_a_source_without_detail_pages_is_planned_in_a_worker_not_on_the_event_loop(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the parsing worker matches the items to the stored entries: planning in this process
    # (the event loop's) fails the test
    from civicfeed import dedup

    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("planned on the event loop")

    monkeypatch.setattr(dedup, "plan_source", not_here)
    config = project(herne_source(origin))
    rss = config.parent / "feeds" / "herne.rss"
    first = [
        ("Meldung vom 24. Januar 2019", "Begleiter gesucht", "/m/3.html"),
        ("Meldung vom 30. Januar 2019", "Wie Geflüchtete in Schule kommen", "/m/2.html"),
        ("kein Datum", "Elf Workshops", "/m/1.html"),
    ]
    origin.set("/herne/", listing(first))
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 3 new, 0 updated, 3 items" in output
    assert "Elf Workshops: date 'kein Datum' not understood" in output
    ids = {item["link"]: item["guid"] for item in rss_items(rss)}
    # planned against the stored entries: one update (same link), one new, ids kept
    origin.set(
        "/herne/",
        listing(
            [
                ("Meldung vom 04. Februar 2019", "Gemeinsam stark", "/m/4.html"),
                ("Meldung vom 24. Januar 2019", "Begleiter für Kultur gesucht", "/m/3.html"),
                ("ohne Datum", "Wie Geflüchtete in Schule kommen", "/m/2.html"),
                first[2],
            ]
        ),
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 1 new, 1 updated, 4 items" in output
    assert "Elf Workshops: date 'kein Datum' not understood" in output  # still undated
    assert "ohne Datum" not in output  # its stored entry has its date
    again = {item["link"]: item["guid"] for item in rss_items(rss)}
    assert {link: again[link] for link in ids} == ids
    assert len(again) == 4


def test_nothing_new_leaves_every_file_untouched(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/plain/", "herne-2019.html", etag=False)  # no validators at all
    sources = herne_source(origin) + (
        f"  - id: plain\n    title: Ohne ETag\n    url: {origin.url('/plain/')}\n"
        f"    tags: [herne]\n    html: {HERNE_RULES}\n"
    )
    config = project(sources, "feeds:\n  - id: alle\n    title: Alle\n    tags: [herne]\n")
    assert refresh(config, capsys)[0] == 0
    files = sorted((config.parent / "feeds").iterdir())
    assert sorted(f.name for f in files) == sorted(
        [
            f"{feed}.{ext}"
            for feed in ("herne", "plain", "alle")
            for ext in ("rss", "atom", "json", "html")
        ]
        + ["index.html", "feeds.opml", "feed.xsl"]
    )
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    code, output = refresh(config, capsys)
    assert code == 0
    assert "herne" in output
    assert "unchanged (304 not modified)" in output
    assert "unchanged: 0 new, 0 updated, 5 items" in output  # plain: fetched, parsed, same
    assert origin.hits("/herne/")[1].headers.get("If-None-Match")
    after = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    assert after == before
    assert sorted((config.parent / "feeds").iterdir()) == files  # no temporary files left


def test_a_failing_source_loses_nothing_and_exits_1(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    sources = herne_source(origin) + (
        f"  - id: dortmund\n    title: Stadt Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
    )
    config = project(sources)
    assert refresh(config, capsys)[0] == 0
    out = config.parent / "feeds"
    before = {f.name: f.read_bytes() for f in out.iterdir()}

    # the page layout changes: the item selector finds nothing
    origin.set("/herne/", "<html><body><div class='new-layout'>Neu!</div></body></html>")
    origin.set("/dortmund.rss", b"gone", status=404, content_type="text/plain")
    code, output = refresh(config, capsys)
    assert code == 1
    assert "herne" in output
    assert "matched nothing" in output
    assert "HTTP 404" in output
    assert "2 source(s): 0 ok (0 new, 0 updated), 2 failed; 0 feed(s) rewritten" in output
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert len(rss_items(out / "herne.rss")) == 5

    # the source recovers: nothing was lost, nothing doubled
    origin.serve_fixture("/herne/", "herne-2019.html")
    code, output = refresh(config, capsys, "--only", "herne")
    assert code == 0, output
    assert "dortmund" not in output
    assert len(rss_items(out / "herne.rss")) == 5


def test_dates_from_detail_pages_when_the_listing_has_none(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2026.html")
    details = {"41002": "Meldung vom 20. November 2026", "40987": "Meldung vom 3. November 2026"}
    for number, date in details.items():
        origin.set(
            f"/Meldungen/News-Detailansicht_{number}.html",
            f"<html><body><header>Stadt Herne</header><main id='content'><p>{date}</p>"
            f"<h1>Titel</h1><p>Am 1. Dezember 2026 im Rathaus.</p></main></body></html>",
        )
    rules = (
        '{item: ".teaser-list .teaser", link: a, title_remove: "^\\\\s*mehr zur Meldung:",'
        ' summary: p, detail_date: "#content"}'
    )
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: {rules}\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    # the third detail page is missing: a warning, and the time first seen as its date
    assert "News-Detailansicht_40950.html: HTTP 404" in output
    assert "Sprachpaten gesucht: no date; using the time it was first seen" in output
    items = {i["title"]: i for i in rss_items(config.parent / "feeds" / "herne.rss")}
    assert items["Fest der Kulturen 2026"]["pubDate"] == "Fri, 20 Nov 2026 00:00:00 +0100"
    assert (
        items["Kommunales Integrationszentrum – neue Sprechzeiten"]["pubDate"]
        == "Tue, 03 Nov 2026 00:00:00 +0100"
    )

    # known entries keep their dates without their detail pages being fetched again
    origin.set(
        "/herne/",
        (Path(__file__).parent / "fixtures" / "herne-2026.html").read_bytes() + b"<!-- changed -->",
    )
    detail_hits = len([r for r in origin.requests if "Detailansicht" in r.path])
    assert refresh(config, capsys)[0] == 0
    again = len([r for r in origin.requests if "Detailansicht" in r.path])
    assert again - detail_hits == 1  # only the one that has no date yet


def test_check_shows_items_and_writes_nothing(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(herne_source(origin))
    assert main(["check", "herne", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"herne: HTML listing {origin.url('/herne/')}\nselectors (configured):" in out
    assert "\n5 items:\n" in out
    assert "\n  1  2019-02-11        Demokratiekonferenz: Was braucht Wanne?\n" in out
    assert origin.url("/Meldungen/News-Detailansicht_27101.html?ref=integration&p=1") in out
    assert not (config.parent / "feeds").exists()
    assert not (config.parent / ".civicfeed").exists()


def test_check_reports_a_failure(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(herne_source(origin, "/nothing/"))
    assert main(["check", "herne", "--config", str(config)]) == 1
    assert "failed: HTTP 404" in capsys.readouterr().out
    assert main(["check", "bochum", "--config", str(config)]) == 2


def test_shipped_sources_yaml_copes_with_both_herne_layouts(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repository's own sources.yaml, its URLs pointed at the test origin."""
    text = (Path(__file__).parents[1] / "sources.yaml").read_text(encoding="utf-8")
    moves = {
        "https://www.herne.de/Stadt-und-Leben/Integration/": "/Stadt-und-Leben/Integration/",
        "https://www.herne.de/Meldungen/": "/Meldungen/",
        "https://www.dortmund.de/rss/pressemitteilungen.xml": "/dortmund.rss",
        "https://www.muelheim-ruhr.de/rss/pressemitteilungen.xml": "/muelheim.atom",
        "https://www.bochum.de/rss/pressemitteilungen.xml": "/bochum.rss",
    }
    for real, path in moves.items():
        assert real in text
        text = text.replace(real, origin.url(path))
    config = tmp_path / "sources.yaml"
    config.write_text(text, encoding="utf-8")
    origin.serve_fixture("/Stadt-und-Leben/Integration/", "herne-2019.html")
    origin.serve_fixture("/Meldungen/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-latin1-declared.rss", content_type="text/xml")
    origin.serve_fixture("/muelheim.atom", "muelheim.atom", content_type="application/atom+xml")
    origin.set("/bochum.rss", b"temporarily broken", status=503, content_type="text/plain")

    code, output = refresh(config, capsys)
    assert code == 1  # Bochum is down
    assert "bochum" in output
    assert "HTTP 503" in output
    feeds = tmp_path / "feeds"
    herne = rss_items(feeds / "herne-integration.rss")
    assert [i["pubDate"][:16] for i in herne] == [
        "Mon, 11 Feb 2019",
        "Mon, 04 Feb 2019",
        "Wed, 30 Jan 2019",
        "Thu, 24 Jan 2019",
        "Mon, 26 Nov 2018",
    ]
    assert not [r for r in origin.requests if "Detailansicht" in r.path]  # dates were listed
    # both Herne listings carry the same stories: one entry each in the aggregate
    assert [i["title"] for i in rss_items(feeds / "herne.rss")] == [i["title"] for i in herne]
    shared = [
        i
        for i in rss_items(feeds / "integration-interkommunal.rss")
        if "10 jahre" in i["title"].lower()
    ]
    assert len(shared) == 1
    assert shared[0]["link"].startswith(origin.url("/Meldungen/News-Detailansicht_27044"))

    # 2026: the listing lost its date lines; the dates come from the detail pages
    origin.serve_fixture("/Stadt-und-Leben/Integration/", "herne-2026.html")
    template = (Path(__file__).parent / "fixtures" / "herne-detail.html").read_text()
    for number, title, date in [
        ("41002", "Fest der Kulturen 2026", "20. November 2026"),
        ("40987", "Neue Sprechzeiten", "3. November 2026"),
        ("40950", "Sprachpaten gesucht", "28. Oktober 2026"),
    ]:
        origin.set(
            f"/Meldungen/News-Detailansicht_{number}.html",
            template.replace("{title}", title).replace("{date}", date),
        )
    origin.set("/bochum.rss", b"still broken", status=503, content_type="text/plain")
    code, output = refresh(config, capsys)
    herne = rss_items(feeds / "herne-integration.rss")
    assert len(herne) == 8  # the 2019 entries stay
    assert [(i["title"], i["pubDate"][:16]) for i in herne[:3]] == [
        ("Fest der Kulturen 2026", "Fri, 20 Nov 2026"),
        ("Kommunales Integrationszentrum – neue Sprechzeiten", "Tue, 03 Nov 2026"),
        ("Sprachpaten gesucht", "Wed, 28 Oct 2026"),
    ]


def test_progress_is_shown_on_a_terminal_only(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys

    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(herne_source(origin))
    primary, secondary = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=60,
            check=False,
        )
        os.close(secondary)
        terminal = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0
    assert b"refreshing: 0/1 sources done" in terminal
    assert b"\x1b[K" in terminal  # the counter is cleared before the result lines
    assert b"refreshing" not in done.stdout
    assert done.stdout.startswith(b"herne")
    # without a terminal there is no counter at all
    plain = subprocess.run(
        [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert b"refreshing" not in plain.stderr
    assert b"unchanged (304 not modified)" in plain.stdout


def two_cities(origin: Origin, project: Callable[..., Path], title: str = "Ruhr") -> Path:
    origin.set("/herne/", listing([("01.03.2024", "Sprachcafé", "/a")]))
    origin.set("/bochum/", listing([("02.03.2024", "Lernpaten", "/b")]))
    sources = herne_source(origin) + herne_source(origin, "/bochum/").replace(
        "id: herne", "id: bochum"
    )
    return project(
        sources, "feeds:\n  - id: alle\n    title: Alle\n    tags: [herne]\n", f"title: {title}\n"
    )


def test_unchanged_refresh_reads_no_stored_entries_and_leaves_the_index_alone(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = two_cities(origin, project)
    assert refresh(config, capsys)[0] == 0
    feeds = config.parent / "feeds"
    before = {f.name: f.stat().st_mtime_ns for f in feeds.iterdir()}
    reads: list[object] = []
    original = SQLiteStore.entries

    def counted(self: SQLiteStore, source_ids: Sequence[str]) -> list[Entry]:
        reads.append(tuple(source_ids))
        return original(self, source_ids)

    monkeypatch.setattr(SQLiteStore, "entries", counted)
    code, output = refresh(config, capsys)  # every source answers 304
    assert code == 0, output
    assert output.count("unchanged (304 not modified)") == 2
    assert reads == []
    assert {f.name: f.stat().st_mtime_ns for f in feeds.iterdir()} == before

    # one source changes: its feed and the aggregate are rendered again, the other feed is
    # only summarised for the index
    origin.set(
        "/bochum/", listing([("03.03.2024", "Neu", "/c"), ("02.03.2024", "Lernpaten", "/b")])
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert reads[0] == ("bochum",)
    assert "Neu" in [i["title"] for i in rss_items(feeds / "alle.rss")]
    assert "Neu" in (feeds / "index.html").read_text(encoding="utf-8")
    assert (feeds / "herne.rss").stat().st_mtime_ns == before["herne.rss"]


def test_a_refresh_killed_before_publishing_is_published_by_the_next_even_on_304s(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = two_cities(origin, project)
    assert refresh(config, capsys)[0] == 0
    origin.set(
        "/herne/", listing([("04.03.2024", "Nachtrag", "/d"), ("01.03.2024", "Sprachcafé", "/a")])
    )

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit(137)  # the entries are stored, no file is written

    monkeypatch.setattr(Publisher, "publish", killed)
    with pytest.raises(SystemExit):
        main(["refresh", "--config", str(config)])
    monkeypatch.undo()
    capsys.readouterr()
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert output.count("unchanged (304 not modified)") == 2
    feeds = config.parent / "feeds"
    for feed in ("herne", "alle"):
        assert "Nachtrag" in [i["title"] for i in rss_items(feeds / f"{feed}.rss")], feed
    assert "Nachtrag" in (feeds / "index.html").read_text(encoding="utf-8")


def test_a_new_title_reaches_the_index_and_opml_when_no_feed_changed(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = two_cities(origin, project)
    assert refresh(config, capsys)[0] == 0
    feeds = config.parent / "feeds"
    rss = (feeds / "herne.rss").stat().st_mtime_ns
    two_cities(origin, project, title="Integration im Revier")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "Integration im Revier" in (feeds / "index.html").read_text(encoding="utf-8")
    assert "Integration im Revier" in (feeds / "feeds.opml").read_text(encoding="utf-8")
    assert (feeds / "herne.rss").stat().st_mtime_ns == rss


def small_feed(index: int) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Stadt {index}</title><link>https://stadt{index}.example/</link>"
        f"<item><title>Meldung {index}</title><link>https://stadt{index}.example/1</link>"
        "<pubDate>Mon, 04 Mar 2024 10:00:00 +0100</pubDate></item></channel></rss>"
    )


def test_the_store_calls_of_sources_answered_by_304_share_their_trips_to_a_thread(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each source's lease and state, then its save and the lease given back, were two
    # hand-overs to a thread per source, which cost more than the calls themselves
    count = 20
    for i in range(count):
        origin.set(f"/{i}.rss", small_feed(i), content_type="application/rss+xml")
    config = project(
        "".join(
            f"  - id: s{i}\n    title: Stadt {i}\n    url: {origin.url(f'/{i}.rss')}\n"
            "    tags: [alle]\n"
            for i in range(count)
        ),
        "feeds:\n  - id: alle\n    title: Alle\n    tags: [alle]\n",
    )
    assert refresh(config, capsys)[0] == 0
    handed: list[object] = []
    original = asyncio.BaseEventLoop.run_in_executor

    def counted(self: asyncio.BaseEventLoop, executor: Any, function: Any, *args: Any) -> Any:
        handed.append(function)
        return original(self, executor, function, *args)

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", counted)
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert output.count("unchanged (304 not modified)") == count
    assert len(origin.requests) == 2 * count
    assert len(handed) <= count + count // 2, handed  # one per source and call: 2 * count + 1
    # and the state is as one call at a time left it: every source's success recorded,
    # no lease left behind
    with sqlite3.connect(config.parent / ".civicfeed" / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM leases").fetchone() == (0,)
        assert db.execute(
            "SELECT COUNT(*) FROM sources WHERE consecutive_failures = 0 AND last_success"
            " IS NOT NULL"
        ).fetchone() == (count,)


def test_store_calls_waiting_together_are_made_in_order_each_with_its_own_outcome() -> None:
    made: list[int] = []
    threads: set[int] = set()
    first_started, go_on = threading.Event(), threading.Event()

    def call(number: int) -> int:
        threads.add(threading.get_ident())
        if number == 0:
            first_started.set()
            go_on.wait(10)
        made.append(number)
        if number == 3:
            raise StoreError("the disk is full")
        return number * 10

    async def run() -> list[object]:
        calls = _StoreCalls(together=True)
        handed: list[object] = []
        loop = asyncio.get_running_loop()
        original = loop.run_in_executor

        def counted(executor: Any, function: Any, *args: Any) -> Any:
            handed.append(function)
            return original(executor, function, *args)

        loop.run_in_executor = counted  # type: ignore[method-assign]
        first = asyncio.ensure_future(calls(call, 0))
        await asyncio.to_thread(first_started.wait, 10)  # the thread is busy with call 0
        handed.clear()
        rest = [asyncio.ensure_future(calls(call, n)) for n in range(1, 6)]
        await asyncio.sleep(0)  # each is waiting for its call
        go_on.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        assert handed == []  # the thread that was busy made the calls that came meanwhile
        return outcomes

    outcomes = asyncio.run(run())
    assert made == [0, 1, 2, 3, 4, 5]
    assert len(threads) == 1
    assert outcomes[:3] == [0, 10, 20]
    assert outcomes[4:] == [40, 50]
    assert isinstance(outcomes[3], StoreError)


def test_a_refresh_answered_by_304s_loads_neither_parsers_nor_worker_processes(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = two_cities(origin, project)
    assert refresh(config, capsys)[0] == 0
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom civicfeed.cli import main\n"
            f"code = main(['refresh', '--config', {str(config)!r}])\n"
            "wanted = {'pebble', 'civicfeed.work', 'civicfeed.normalise', 'civicfeed.extract'}\n"
            "print(code, sorted(wanted & set(sys.modules)), file=sys.stderr)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert probe.stdout.count("unchanged (304 not modified)") == 2, probe.stdout
    assert probe.stderr.strip().splitlines()[-1] == "0 []", probe.stderr


def test_the_first_of_many_store_calls_waiting_together_go_on_before_the_last_is_made() -> None:
    # a run's first claims are one per source: its first request must not wait for the last
    busy, free, blocked, go_on = (threading.Event() for _ in range(4))

    def call(number: int) -> int:
        if number == 0:  # the thread is busy while the others come
            busy.set()
            free.wait(10)
        if number == 30:
            blocked.set()
            go_on.wait(10)
        return number

    async def run() -> None:
        calls = _StoreCalls(together=True)
        first = asyncio.ensure_future(calls(call, 0))
        await asyncio.to_thread(busy.wait, 10)
        futures = [asyncio.ensure_future(calls(call, n)) for n in range(1, 40)]
        await asyncio.sleep(0)  # all are waiting for their calls, together
        free.set()
        try:
            await asyncio.wait_for(futures[0], 10)  # back before call 30 is over
            assert not futures[-1].done()
        finally:
            go_on.set()
        assert await asyncio.gather(first, *futures) == list(range(40))

    asyncio.run(run())
