"""What is written besides RSS and Atom: attribution, JSON Feed, OPML, archives, the index,
the feed pages and the stylesheet."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from lxml import etree

from civicfeed import publish
from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.dedup import Story
from civicfeed.publish import page_stories
from civicfeed.store import open_store
from conftest import BASE, write_sources
from feedcheck import ATOM, check_atom, check_rss, rss_items
from origin import Origin
from store.builders import make_entry
from test_bad_items import atom
from test_refresh import refresh

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def four_cities(origin: Origin, tmp_path: Path) -> Path:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    origin.serve_fixture("/muelheim.atom", "muelheim.atom", content_type="application/atom+xml")
    origin.serve_fixture("/bochum/", "bochum-latin1.html", content_type="text/html")
    config = write_sources(
        tmp_path,
        f"""  - id: herne
    title: Integrationsportal der Stadt Herne
    url: {origin.url("/herne/")}
    html: {{item: article.news-teaser, title: h3, date: .news-date, link: a.more}}
  - id: dortmund
    title: Stadt Dortmund
    url: {origin.url("/dortmund.rss")}
    home: https://www.dortmund.de/
  - id: muelheim
    title: Stadt Mülheim an der Ruhr
    url: {origin.url("/muelheim.atom")}
  - id: bochum
    title: Stadt Bochum
    url: {origin.url("/bochum/")}
    html: auto
""",
        "feeds:\n  - id: ruhr\n    title: Ruhrgebiet\n"
        "    sources: [herne, dortmund, muelheim, bochum]\n",
        top=f"title: Integration im Ruhrgebiet\nwebsub_hub: {origin.url('/hub')}\n",
        defaults="",
    )
    assert main(["refresh", "--config", str(config)]) == 0
    return tmp_path / "feeds"


def test_aggregate_entries_say_where_they_came_from(four_cities: Path) -> None:
    atom = check_atom(four_cities / "ruhr.atom", self_url=f"{BASE}ruhr.atom")
    entries = atom.findall(f"{ATOM}entry")
    assert len(entries) == 9
    for entry in entries:
        source = entry.find(f"{ATOM}source")
        assert source is not None
        assert source.findtext(f"{ATOM}title") in {
            "Integrationsportal der Stadt Herne",
            "Stadt Dortmund",
            "Stadt Mülheim an der Ruhr",
            "Stadt Bochum",
        }
        assert (source.findtext(f"{ATOM}id") or "").startswith(BASE)
    shared = next(e for e in entries if "10 Jahre" in (e.findtext(f"{ATOM}title") or ""))
    assert shared.find(f"{ATOM}source/{ATOM}id").text == f"{BASE}herne.atom"  # type: ignore[union-attr]
    summary = shared.findtext(f"{ATOM}summary") or ""
    assert "Auch veröffentlicht von:" in summary
    assert (
        '<a href="https://www.dortmund.de/presse/2019/02/integration-interkommunal.html">'
        "Stadt Dortmund</a>" in summary
    )
    assert "Stadt Mülheim an der Ruhr</a>" in summary
    assert "Stadt Bochum</a>" in summary

    rss = check_rss(four_cities / "ruhr.rss", self_url=f"{BASE}ruhr.rss")
    sources = [(s.get("url"), s.text) for s in rss.iter("source")]
    assert len(sources) == 9
    assert (f"{BASE}herne.rss", "Integrationsportal der Stadt Herne") in sources
    # a source's own feed carries no attribution: it is all its own
    own = etree.fromstring((four_cities / "herne.atom").read_bytes())
    assert own.find(f"{ATOM}entry/{ATOM}source") is None


def test_feeds_declare_the_websub_hub_and_it_is_told_of_changes(
    four_cities: Path, origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = origin.url("/hub")
    pings = {parse_qs(body.decode())["hub.url"][0] for path, body in origin.posts}
    assert all(parse_qs(body.decode())["hub.mode"] == ["publish"] for _, body in origin.posts)
    assert pings == {
        f"{BASE}{name}.{ext}"
        for name in ("herne", "dortmund", "muelheim", "bochum", "ruhr")
        for ext in ("rss", "atom", "json")
    }
    # nothing changed: nobody is told anything
    origin.posts.clear()
    assert main(["refresh", "--config", str(four_cities.parent / "sources.yaml")]) == 0
    assert origin.posts == []
    # a hub that refuses is reported; the feeds are written all the same
    origin.post_status = 500
    origin.set(
        "/muelheim.atom",
        (four_cities.parent / "feeds" / "muelheim.atom")
        .read_bytes()
        .replace(b"Interkulturelle Woche", b"Interkulturelle Wochen"),
        content_type="application/atom+xml",
    )
    capsys.readouterr()
    assert main(["refresh", "--config", str(four_cities.parent / "sources.yaml")]) == 1
    assert f"WebSub hub {hub}: HTTP 500" in capsys.readouterr().err
    for name in ("ruhr", "herne"):
        atom = etree.fromstring((four_cities / f"{name}.atom").read_bytes())
        hubs = [a.get("href") for a in atom.findall(f"{ATOM}link") if a.get("rel") == "hub"]
        assert hubs == [hub]
        rss = etree.fromstring((four_cities / f"{name}.rss").read_bytes())
        hubs = [a.get("href") for a in rss.iter(f"{ATOM}link") if a.get("rel") == "hub"]
        assert hubs == [hub]
        assert json.loads((four_cities / f"{name}.json").read_text())["hubs"] == [
            {"type": "WebSub", "url": hub}
        ]


def check_json_feed(path: Path) -> dict:  # type: ignore[type-arg]
    """The rules of JSON Feed 1.1 that a reader relies on."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str)
    assert document["title"]
    assert isinstance(document["items"], list)
    for key in ("home_page_url", "feed_url"):
        if key in document:
            assert document[key].startswith(("http://", "https://"))
    ids = set()
    for item in document["items"]:
        assert isinstance(item["id"], str)
        assert item["id"] not in ids
        ids.add(item["id"])
        assert isinstance(item.get("content_html", item.get("content_text")), str)
        for key in ("date_published", "date_modified"):
            assert RFC3339.match(item[key]), item[key]
        assert all(
            k
            in {
                "id",
                "url",
                "title",
                "content_html",
                "content_text",
                "summary",
                "date_published",
                "date_modified",
                "authors",
                "tags",
                "image",
                "external_url",
                "banner_image",
                "language",
                "attachments",
            }
            or k.startswith("_")
            for k in item
        )
    return document


def test_json_feed_is_valid_and_carries_attribution(four_cities: Path) -> None:
    document = check_json_feed(four_cities / "ruhr.json")
    assert document["feed_url"] == f"{BASE}ruhr.json"
    assert len(document["items"]) == 9
    shared = next(i for i in document["items"] if "10 Jahre" in i["title"])
    assert shared["_civicfeed"]["source"]["id"] == "herne"
    assert [o["title"] for o in shared["_civicfeed"]["also_published_by"]] == [
        "Stadt Dortmund",
        "Stadt Mülheim an der Ruhr",
        "Stadt Bochum",
    ]
    for name in ("herne", "dortmund", "muelheim", "bochum"):
        check_json_feed(four_cities / f"{name}.json")


def test_opml_lists_every_feed(four_cities: Path) -> None:
    root = etree.fromstring((four_cities / "feeds.opml").read_bytes())
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Integration im Ruhrgebiet"
    outlines = {o.get("xmlUrl"): o.get("text") for o in root.iter("outline")}
    assert outlines == {
        f"{BASE}{name}.rss": title
        for name, title in [
            ("herne", "Integrationsportal der Stadt Herne"),
            ("dortmund", "Stadt Dortmund"),
            ("muelheim", "Stadt Mülheim an der Ruhr"),
            ("bochum", "Stadt Bochum"),
            ("ruhr", "Ruhrgebiet"),
        ]
    }
    assert all(o.get("type") == "rss" for o in root.iter("outline"))


def test_index_page_lists_feeds_with_autodiscovery(four_cities: Path) -> None:
    page = etree.HTML((four_cities / "index.html").read_bytes())
    assert page.get("lang") == "de"
    alternates = {
        (a.get("type"), a.get("href")) for a in page.iter("link") if a.get("rel") == "alternate"
    }
    for name in ("herne", "ruhr"):
        assert ("application/rss+xml", f"{BASE}{name}.rss") in alternates
        assert ("application/atom+xml", f"{BASE}{name}.atom") in alternates
        assert ("application/feed+json", f"{BASE}{name}.json") in alternates
    headings = [h.xpath("string()") for h in page.iter("h2")]
    assert headings[0] == "Ruhrgebiet"  # aggregates first
    assert "Stadt Dortmund" in headings
    inputs = {i.get("id"): i.get("value") for i in page.iter("input")}
    assert inputs["url-ruhr"] == f"{BASE}ruhr.rss"
    labels = {label.get("for") for label in page.iter("label")}
    assert set(inputs) <= labels  # every field has its label
    text = page.xpath("string(//main)")
    assert "9 Meldungen" in text
    assert (
        "Neueste Meldung: Demokratiekonferenz: Was braucht Wanne? (11. Februar 2019)"
        in " ".join(text.split())
    )
    assert page.xpath("//script") == []


def test_feed_page_is_readable(four_cities: Path) -> None:
    page = etree.HTML((four_cities / "ruhr.html").read_bytes())
    assert page.xpath("string(//h1)") == "Ruhrgebiet"
    titles = [a.xpath("string()") for a in page.xpath("//article/h2/a")]
    assert len(titles) == 9
    assert titles[0] == "Demokratiekonferenz: Was braucht Wanne?"
    assert "So abonnieren Sie diesen Feed" in page.xpath("string(//header)")
    assert page.xpath("//input[@id='subscribe']/@value") == [f"{BASE}ruhr.rss"]


def test_stylesheet_turns_rss_and_atom_into_a_readable_page(four_cities: Path) -> None:
    transform = etree.XSLT(etree.parse(str(four_cities / "feed.xsl")))
    for name in ("ruhr.rss", "ruhr.atom"):
        document = etree.parse(str(four_cities / name))
        pi = document.getroot().getprevious()
        assert pi is not None
        assert pi.target == "xml-stylesheet"
        assert 'href="feed.xsl"' in pi.text
        html = transform(document)
        text = " ".join(str(html).split())
        assert "<h1>Ruhrgebiet</h1>" in text
        assert "Dies ist ein Feed." in text
        assert text.count('class="entry"') == 9
        assert "Demokratiekonferenz: Was braucht Wanne?" in text


def story(number: int, seen: datetime) -> Story:
    entry = make_entry(
        f"id-{number}",
        "s",
        title=f"T{number}",
        published=seen - timedelta(days=number % 3),
        seen=seen,
        summary="",
    )
    return Story(id=entry.id, entry=entry, origins=(), updated=seen)


def test_archive_pages_are_fixed_by_arrival_and_cover_everything() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stories = [story(n, start + timedelta(hours=n)) for n in range(1, 12)]
    current, pages = page_stories(stories, 4)
    assert [[s.id for s in sorted(p, key=lambda s: s.id)] for p in pages] == [
        ["id-1", "id-2", "id-3", "id-4"],
        ["id-5", "id-6", "id-7", "id-8"],
    ]
    assert sorted(s.id for s in current) == ["id-10", "id-11", "id-8", "id-9"]
    covered = {s.id for s in current} | {s.id for p in pages for s in p}
    assert covered == {s.id for s in stories}
    # later arrivals never move a story from one complete page to another
    more = stories + [story(n, start + timedelta(hours=n)) for n in range(12, 20)]
    _, later_pages = page_stories(more, 4)
    assert [s.id for s in later_pages[0]] == [s.id for s in pages[0]]
    assert [s.id for s in later_pages[1]] == [s.id for s in pages[1]]
    assert len(later_pages) == 4


def test_a_merged_story_arrives_when_its_first_copy_was_seen() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stories = [story(n, start + timedelta(hours=n)) for n in range(1, 9)]
    # the copy shown was seen last, another source's copy of it first of all
    shown = story(9, start + timedelta(hours=9))
    early = make_entry("id-0", "t", title="T9", published=start, seen=start, summary="")
    stories.append(Story(id=early.id, entry=shown.entry, origins=(early,), updated=shown.updated))
    _, pages = page_stories(stories, 3)
    assert [sorted(s.id for s in page) for page in pages] == [
        ["id-0", "id-1", "id-2"],
        ["id-3", "id-4", "id-5"],
        ["id-6", "id-7", "id-8"],
    ]


def test_archives_are_written_with_rfc5005_links(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_sources(
        tmp_path,
        f"  - id: liste\n    title: Liste\n    url: {origin.url('/liste/')}\n    max_entries: 3\n"
        "    html: {item: li, date: .d}\n",
        defaults="",
    )
    feeds = tmp_path / "feeds"

    def listing(numbers: range) -> str:
        rows = "".join(
            f'<li><span class="d">{n}.03.2019</span><a href="/m/{n}">Meldung {n}</a></li>'
            for n in numbers
        )
        return f"<html><body><ul>{rows}</ul></body></html>"

    origin.set("/liste/", listing(range(1, 8)))  # 7 stories: page 1 and 2 complete
    assert main(["refresh", "--config", str(config)]) == 0
    archive = feeds / "archive" / "liste"
    assert sorted(p.name for p in archive.iterdir()) == ["1.atom", "1.rss", "2.atom", "2.rss"]
    head = check_atom(feeds / "liste.atom", self_url=f"{BASE}liste.atom")
    assert _links(head) == {
        "self": f"{BASE}liste.atom",
        "alternate": origin.url("/liste/"),
        "prev-archive": f"{BASE}archive/liste/2.atom",
    }
    first = check_atom(archive / "1.atom", self_url=f"{BASE}archive/liste/1.atom")
    assert first.find("{http://purl.org/syndication/history/1.0}archive") is not None
    assert _links(first)["current"] == f"{BASE}liste.atom"
    assert "prev-archive" not in _links(first)
    assert _links(first)["next-archive"] == f"{BASE}archive/liste/2.atom"
    second = check_atom(archive / "2.atom")
    assert _links(second)["prev-archive"] == f"{BASE}archive/liste/1.atom"
    assert "next-archive" not in _links(second)
    rss_archive = check_rss(archive / "1.rss", self_url=f"{BASE}archive/liste/1.rss")
    assert rss_archive.find("channel/{http://purl.org/syndication/history/1.0}archive") is not None
    assert (
        etree.parse(str(archive / "1.atom")).getroot().getprevious().text
        == 'type="text/xsl" href="../../feed.xsl"'
    )
    everything = {
        e.findtext(f"{ATOM}title")
        for doc in (head, first, second)
        for e in doc.findall(f"{ATOM}entry")
    }
    assert everything == {f"Meldung {n}" for n in range(1, 8)}
    page_one = (archive / "1.atom").read_bytes()

    origin.set("/liste/", listing(range(5, 11)))  # 3 more: page 3 completes
    assert main(["refresh", "--config", str(config)]) == 0
    assert (archive / "1.atom").read_bytes() == page_one  # a complete page never changes
    assert _links(check_atom(archive / "2.atom"))["next-archive"] == f"{BASE}archive/liste/3.atom"
    assert _links(check_atom(feeds / "liste.atom"))["prev-archive"] == f"{BASE}archive/liste/3.atom"
    assert len(rss_items(feeds / "liste.rss")) == 3


def test_a_feed_read_whole_at_once_is_published_as_from_its_heads(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed of one source with at most max_entries entries is read whole in one read
    (``_whole_heads``); the files and archive pages are those of its heads read whole after."""
    monkeypatch.setenv("CIVICFEED_NOW", "2026-03-01T08:00:00+00:00")

    def listing(numbers: range) -> str:
        rows = "".join(
            f'<li><span class="d">{n}.03.2019</span><a href="/m/{n}">Meldung {n}</a>'
            f"<p>Text {n} &amp; mehr</p></li>"
            for n in numbers
        )
        return f"<html><body><ul>{rows}</ul></body></html>"

    origin.set("/drei/", listing(range(1, 4)))  # exactly max_entries: page 1 completes
    origin.set("/zwei/", listing(range(1, 3)))
    origin.set("/fuenf/", listing(range(1, 6)))  # more than max_entries: read by its heads
    sources = "".join(
        f"  - id: {name}\n    url: {origin.url(f'/{name}/')}\n    max_entries: 3\n"
        "    html: {item: li, date: .d, summary: p}\n"
        for name in ("drei", "zwei", "fuenf")
    )
    made = {}
    read_whole: list[str] = []
    chosen = publish._whole_heads

    def noted(store: Any, spec: publish.FeedSpec, known: Any) -> Any:
        found = chosen(store, spec, known)
        if found is not None:
            read_whole.append(spec.info.id)
        return found

    for way, reader in (("whole", noted), ("heads", lambda store, spec, known: None)):
        folder = tmp_path / way
        folder.mkdir()
        config = write_sources(folder, sources, defaults="")
        monkeypatch.setattr(publish, "_whole_heads", reader)
        assert main(["refresh", "--config", str(config)]) == 0
        monkeypatch.setattr(publish, "_whole_heads", chosen)
        feeds = folder / "feeds"
        made[way] = {
            path.relative_to(feeds).as_posix(): path.read_bytes()
            for path in sorted(feeds.rglob("*"))
            if path.is_file()
        }
        store = open_store(load_config(config).state, read_only=True)
        try:
            made[way]["pages"] = repr(
                [store.archived_pages(name) for name in ("drei", "zwei", "fuenf")]
            ).encode()
        finally:
            store.close()
    assert sorted(read_whole) == ["drei", "zwei"]
    assert made["whole"] == made["heads"]
    assert "archive/drei/1.rss" in made["whole"]
    assert "archive/fuenf/1.rss" in made["whole"]
    assert b"Text 2 &amp;amp; mehr" in made["whole"]["archive/drei/1.rss"]


def _links(root: etree._Element) -> dict[str, str]:
    return {a.get("rel", "alternate"): a.get("href", "") for a in root.findall(f"{ATOM}link")}


def _cards(index: Path) -> dict[str, str]:
    """Each feed's card on the index page: its id and what it says of its stories."""
    text = index.read_text(encoding="utf-8")
    return dict(
        re.findall(r'id="feed-([\w-]+)">.*?<p class="meta">(\d+ Meldungen?)</p>', text, re.S)
    )


def test_the_index_comes_from_the_stored_totals_without_reading_unchanged_feeds(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def feed(letter: str, count: int) -> str:
        return atom(
            [
                (
                    f"Meldung {letter} {n}",
                    f"https://{letter}.example/{n}",
                    f"2026-06-0{n}T10:00:00Z",
                )
                for n in range(1, count + 1)
            ]
        )

    for letter in "abc":
        origin.set(f"/{letter}.atom", feed(letter, 2), content_type="application/atom+xml")
    config = project(
        "".join(
            f"  - id: {x}\n    title: Quelle {x}\n    url: {origin.url(f'/{x}.atom')}\n"
            for x in "abc"
        ),
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [a, b, c]\n",
    )
    assert refresh(config, capsys)[0] == 0
    index = config.parent / "feeds" / "index.html"
    assert _cards(index) == {"alle": "6 Meldungen", **{x: "2 Meldungen" for x in "abc"}}

    merged: list[tuple[str, ...]] = []
    real = publish.merge_stories

    def spy(entries: object, order: tuple[str, ...], *args: object) -> object:
        merged.append(tuple(order))
        return real(entries, order, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(publish, "merge_stories", spy)
    # b has a third story: its feed and the aggregate are read; the index, written by this
    # new process, still knows every feed
    origin.set("/b.atom", feed("b", 3), content_type="application/atom+xml")
    assert refresh(config, capsys)[0] == 0
    assert sorted(merged) == [("a", "b", "c"), ("b",)]
    assert _cards(index) == {
        "alle": "7 Meldungen",
        "a": "2 Meldungen",
        "b": "3 Meldungen",
        "c": "2 Meldungen",
    }
    assert "Meldung b 3" in index.read_text(encoding="utf-8")

    # a state published before totals were kept: the feeds without them are read once
    with sqlite3.connect(config.parent / ".civicfeed" / "state.db") as db:
        db.execute("DELETE FROM feed_summaries WHERE feed_id IN ('a', 'c')")
    merged.clear()
    origin.set("/b.atom", feed("b", 4), content_type="application/atom+xml")
    assert refresh(config, capsys)[0] == 0
    assert sorted(merged) == [("a",), ("a", "b", "c"), ("b",), ("c",)]
    assert _cards(index) == {
        "alle": "8 Meldungen",
        "a": "2 Meldungen",
        "b": "4 Meldungen",
        "c": "2 Meldungen",
    }
    merged.clear()
    origin.set("/b.atom", feed("b", 5), content_type="application/atom+xml")
    assert refresh(config, capsys)[0] == 0
    assert sorted(merged) == [("a", "b", "c"), ("b",)]
