"""Every announcement, once, and right: the failures seen on real material, each refreshed
end to end over loopback HTTP into a real SQLite file and real feed files."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from feedcheck import check_rss, rss_items
from origin import Origin
from test_refresh import HERNE_RULES, herne_source, listing, refresh

NOTICE = "Öffentliche Bekanntmachung"


def rss(items: list[str], title: str = "Stadt Dortmund", extra: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://www.dortmund.de/</link>"
        f"<description>Meldungen</description>{extra}{''.join(items)}</channel></rss>"
    )


def rss_item(title: str | None, guid: str, date: str, link: str, text: str = "") -> str:
    head = f"<title>{title}</title>" if title is not None else ""
    return (
        f"<item>{head}<guid isPermaLink='false'>{guid}</guid><pubDate>{date}</pubDate>"
        f"<link>{link}</link><description>{text}</description></item>"
    )


def stored(config: Path) -> int:
    with sqlite3.connect(config.parent / ".civicfeed" / "state.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def test_notices_with_one_generic_title_on_one_day_are_all_kept(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set(
        "/herne/",
        listing([("Meldung vom 10. Februar 2026", NOTICE, f"/bk/{n}.html") for n in (1, 2, 3)]),
    )
    times = ("09:00", "11:30", "15:45")
    origin.set(
        "/dortmund.rss",
        rss(
            [
                rss_item(NOTICE, f"bk-{n}", f"Tue, 10 Feb 2026 {t}:00 +0100", f"/bk?id={n}", f"{n}")
                for n, t in enumerate(times, 1)
            ]
        ),
        content_type="application/rss+xml",
    )
    sources = herne_source(origin) + (
        f"  - id: dortmund\n    title: Stadt Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
    )
    config = project(
        sources, "feeds:\n  - id: alle\n    title: Alle\n    sources: [herne, dortmund]\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert output.count("new: 3 new, 0 updated, 3 items") == 2
    assert stored(config) == 6
    feeds = config.parent / "feeds"
    for name, count in (("herne", 3), ("dortmund", 3), ("alle", 6)):
        check_rss(feeds / f"{name}.rss")
        items = rss_items(feeds / f"{name}.rss")
        assert [i["title"] for i in items] == [NOTICE] * count
        assert len({i["link"] for i in items}) == count


def test_an_undated_item_with_a_new_link_never_replaces_a_stored_one(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(herne_source(origin))
    old = ("Meldung vom 2. Februar 2026", "Straßensperrung", "/meldung/101")
    origin.set("/herne/", listing([old]))
    assert refresh(config, capsys)[0] == 0
    origin.set(
        "/herne/",
        listing(
            [
                ("", "Straßensperrung", "/meldung/187"),
                old,
            ]
        ),
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 1 new, 0 updated, 2 items" in output
    links = [i["link"] for i in rss_items(config.parent / "feeds" / "herne.rss")]
    assert sorted(links) == [origin.url("/meldung/101"), origin.url("/meldung/187")]


def test_a_story_republished_the_next_day_is_one_entry_in_the_aggregate(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    story = "Städtekooperation feiert „10 Jahre Integration.Interkommunal“"
    origin.set("/herne/", listing([("Meldung vom 4. Februar 2026", story, "/m/1.html")]))
    origin.set(
        "/partner.rss",
        rss([rss_item(story, "p-1", "Thu, 05 Feb 2026 11:00:00 +0100", "https://partner/x")]),
        content_type="application/rss+xml",
    )
    sources = herne_source(origin) + (
        f"  - id: partner\n    title: Partnerstadt\n    url: {origin.url('/partner.rss')}\n"
    )
    aggregate = "feeds:\n  - id: alle\n    title: Alle\n    sources: [herne, partner]\n"
    config = project(sources, aggregate)
    assert refresh(config, capsys)[0] == 0
    items = rss_items(config.parent / "feeds" / "alle.rss")
    assert [i["link"] for i in items] == [origin.url("/m/1.html")]
    assert "Auch veröffentlicht von" in items[0]["description"]
    # with a window of 0 only the same calendar day merges
    config = project(sources, aggregate, top="dedup_window: 0\n")
    assert refresh(config, capsys)[0] == 0
    assert len(rss_items(config.parent / "feeds" / "alle.rss")) == 2


def test_dedup_window_is_a_duration_or_0(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from civicfeed.config import load_config

    assert load_config(project(herne_source(origin))).dedup_window == 86400
    assert load_config(project(herne_source(origin), top="dedup_window: 0\n")).dedup_window == 0
    assert (
        load_config(project(herne_source(origin), top="dedup_window: 36h\n")).dedup_window == 129600
    )
    code, output = refresh(project(herne_source(origin), top="dedup_window: soon\n"), capsys)
    assert code == 2
    assert "sources.yaml:3: dedup_window: 'soon' is not a duration" in output


def test_feed_dates_keep_their_offsets_and_zones(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dates = {
        "a": ("2006-01-11 16:42:55 -0800", "Thu, 12 Jan 2006 01:42:55 +0100"),
        "b": ("Sun, 03 Feb 2019 23:20:00 GMT-01:01", "Mon, 04 Feb 2019 01:21:00 +0100"),
        "c": ("Thu, 01 Jan 2004 19:48:21 -00:20", "Thu, 01 Jan 2004 21:08:21 +0100"),
        "d": ("Tue, 10 Jun 2003 09:41:01 PT", "Tue, 10 Jun 2003 18:41:01 +0200"),
        "e": ("Fri, 10 Jan 2003 09:41:01 ET", "Fri, 10 Jan 2003 15:41:01 +0100"),
        "f": ("Tue, 10 Jun 2003 09:41:01 MEST", "Tue, 10 Jun 2003 09:41:01 +0200"),
        "g": ("Sat, Dec 16 2023 02:02:33 PM", "Sat, 16 Dec 2023 14:02:33 +0100"),  # local
    }
    items = [
        rss_item(f"Meldung {key}", key, written, f"https://www.dortmund.de/{key}")
        for key, (written, _) in dates.items()
    ]
    origin.set("/dortmund.rss", rss(items), content_type="application/rss+xml")
    config = project(
        f"  - id: dortmund\n    title: Stadt Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    written = {
        i["title"]: i["pubDate"] for i in rss_items(config.parent / "feeds" / "dortmund.rss")
    }
    assert written == {f"Meldung {key}": want for key, (_, want) in dates.items()}


def test_titles_are_decoded_once_and_invisible_characters_dropped(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    titles = {
        "a": ("Kein &amp;amp;nbsp; hier", "Kein &amp;nbsp; hier"),
        "b": ("Zeichen &amp;#0 bleibt", "Zeichen &#0 bleibt"),
        "c": ("Bürger\u00admeister\u00adwahl", "Bürgermeisterwahl"),
    }
    items = [
        rss_item(written, key, "Tue, 10 Feb 2026 09:00:00 +0100", f"https://x.example/{key}")
        for key, (written, _) in titles.items()
    ]
    origin.set("/dortmund.rss", rss(items), content_type="application/rss+xml")
    # the partner writes the same headline without soft hyphens: one story in the aggregate
    origin.set(
        "/partner.rss",
        rss([rss_item("Bürgermeisterwahl", "p", "Tue, 10 Feb 2026 12:00:00 +0100", "https://p/x")]),
        content_type="application/rss+xml",
    )
    sources = (
        f"  - id: dortmund\n    title: Stadt Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
        f"  - id: partner\n    title: Partner\n    url: {origin.url('/partner.rss')}\n"
    )
    config = project(
        sources, "feeds:\n  - id: alle\n    title: Alle\n    sources: [dortmund, partner]\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    feeds = config.parent / "feeds"
    shown = sorted(i["title"] for i in rss_items(feeds / "dortmund.rss"))
    # as feedparser reads them (entities decoded once), never decoded again
    assert shown == sorted(want for _, want in titles.values())
    assert "\ufffd" not in (feeds / "dortmund.rss").read_text(encoding="utf-8")
    assert len(rss_items(feeds / "alle.rss")) == 3


def test_items_without_a_title_are_titled_from_their_summary(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "<p>Die <b>Stadtbibliothek</b> öffnet ab März auch samstags, wie Dr. Beck mitteilte. "
        "Weitere Informationen folgen.</p>"
    )
    long_text = "<p>" + "Sehr lange Meldung ohne Punkt " * 10 + "</p>"
    items = [
        rss_item(None, "a", "Tue, 10 Feb 2026 09:00:00 +0100", "https://x.example/a", text),
        rss_item(None, "b", "Tue, 10 Feb 2026 10:00:00 +0100", "https://x.example/b", long_text),
        rss_item("Mit Titel", "c", "Tue, 10 Feb 2026 11:00:00 +0100", "https://x.example/c"),
        "<item><guid isPermaLink='false'>empty</guid></item>",  # nothing to show: skipped
    ]
    origin.set("/microblog.rss", rss(items), content_type="application/rss+xml")
    config = project(
        f"  - id: blog\n    title: Microblog\n    url: {origin.url('/microblog.rss')}\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "new: 3 new, 0 updated, 3 items" in output
    assert "an item without a title was titled from its summary" in output
    assert "an item without title, summary and link was skipped" in output
    titles = [i["title"] for i in rss_items(config.parent / "feeds" / "blog.rss")]
    assert titles[0] == "Mit Titel"
    assert titles[2] == "Die Stadtbibliothek öffnet ab März auch samstags, wie Dr. Beck mitteilte."
    assert len(titles[1]) <= 100
    assert titles[1].endswith("Punkt Sehr…")  # cut at a word


def test_edited_extraction_settings_apply_at_the_next_refresh(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set(
        "/herne/",
        listing(
            [
                ("Meldung vom 4. Februar 2026", "Sprachkurse [Archiv]", "/m/1.html"),
                ("Meldung vom 3. Februar 2026", "Fest der Kulturen [Archiv]", "/m/2.html"),
            ]
        ),
    )
    config = project(herne_source(origin))
    assert refresh(config, capsys)[0] == 0
    rss_file = config.parent / "feeds" / "herne.rss"
    ids = {i["link"]: i["guid"] for i in rss_items(rss_file)}
    # the same page again: answered 304
    code, output = refresh(config, capsys)
    assert "unchanged (304 not modified)" in output
    # the user removes the suffix with title_remove: the next refresh reads the page again
    edited = config.read_text(encoding="utf-8").replace(
        "summary: .news-text}", "summary: .news-text, title_remove: ' \\[Archiv\\]$'}"
    )
    config.write_text(edited, encoding="utf-8")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "updated: 0 new, 2 updated, 2 items" in output
    assert not origin.hits("/herne/")[-1].headers.get("If-None-Match")
    items = rss_items(rss_file)
    assert sorted(i["title"] for i in items) == ["Fest der Kulturen", "Sprachkurse"]
    assert {i["link"]: i["guid"] for i in items} == ids  # the entries keep their ids
    # settings unchanged again: conditional requests again
    assert "unchanged (304 not modified)" in refresh(config, capsys)[1]
    # --reparse reads the named sources again whatever their validators say
    code, output = refresh(config, capsys, "--reparse")
    assert code == 0, output
    assert "unchanged: 0 new, 0 updated, 2 items" in output
    assert not origin.hits("/herne/")[-1].headers.get("If-None-Match")


def test_a_source_without_a_title_is_named_by_its_feed_page_or_host(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    item = rss_item("Meldung", "m-1", "Tue, 10 Feb 2026 09:00:00 +0100", "https://x.example/1")
    origin.set(
        "/dortmund.rss",
        rss([item], title="Stadt Dortmund – Presse"),
        content_type="application/rss+xml",
    )
    origin.set("/untitled.rss", rss([item], title=""), content_type="application/rss+xml")
    origin.set(
        "/herne/",
        listing([("Meldung vom 4. Februar 2026", "Sprachkurse", "/m/1.html")]).replace(
            "<head>", "<head><title>Pressemeldungen der Stadt Herne</title>"
        ),
    )
    sources = (
        f"  - id: dortmund\n    url: {origin.url('/dortmund.rss')}\n"
        f"  - id: untitled\n    url: {origin.url('/untitled.rss', host='localhost')}\n"
        f"  - id: herne\n    url: {origin.url('/herne/')}\n    html: {HERNE_RULES}\n"
    )
    config = project(sources)
    code, output = refresh(config, capsys)
    assert code == 0, output
    feeds = config.parent / "feeds"

    def channel_title(name: str) -> str:
        return str(check_rss(feeds / f"{name}.rss").findtext("channel/title"))

    assert channel_title("dortmund") == "Stadt Dortmund – Presse"
    assert channel_title("herne") == "Pressemeldungen der Stadt Herne"
    assert channel_title("untitled") == "localhost"
    # the source fails later: its feed keeps the title it had
    origin.set("/dortmund.rss", b"gone", status=404, content_type="text/plain")
    (feeds / "dortmund.rss").unlink()
    assert refresh(config, capsys)[0] == 1
    assert channel_title("dortmund") == "Stadt Dortmund – Presse"


def test_every_feed_says_its_language(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    item = rss_item("News", "n-1", "Tue, 10 Feb 2026 09:00:00 +0100", "https://x.example/1")
    origin.set(
        "/en.rss",
        rss([item], extra="<language>en-us</language>"),
        content_type="application/rss+xml",
    )
    origin.set("/plain.rss", rss([item]), content_type="application/rss+xml")
    origin.set(
        "/fr.rss", rss([item], extra="<language>en</language>"), content_type="application/rss+xml"
    )
    sources = (
        f"  - id: declared\n    url: {origin.url('/en.rss')}\n"
        f"  - id: plain\n    url: {origin.url('/plain.rss')}\n"
        f"  - id: configured\n    url: {origin.url('/fr.rss')}\n    language: fr\n"
    )
    feeds_yaml = (
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [declared, plain, configured]\n"
        "  - id: english\n    title: English\n    sources: [declared]\n    language: en\n"
    )
    config = project(sources, feeds_yaml, top="language: nl\n")
    code, output = refresh(config, capsys)
    assert code == 0, output
    feeds = config.parent / "feeds"
    want = {"declared": "en-us", "plain": "nl", "configured": "fr", "alle": "nl", "english": "en"}
    for name, language in want.items():
        assert check_rss(feeds / f"{name}.rss").findtext("channel/language") == language
        atom = etree.parse(feeds / f"{name}.atom").getroot()
        assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == language
        document = json.loads((feeds / f"{name}.json").read_text(encoding="utf-8"))
        assert document["language"] == language
    # without any language setting, feeds are German
    config = project(f"  - id: plain\n    url: {origin.url('/plain.rss')}\n")
    assert refresh(config, capsys)[0] == 0
    assert check_rss(feeds / "plain.rss").findtext("channel/language") == "de"
    code, output = refresh(project(sources, top="language: 'de DE'\n"), capsys)
    assert code == 2
    assert "language: 'de DE' is not a language tag" in output
