"""`civicfeed add URL`: feed discovery, pinned selectors, and sources.yaml kept as it was.

Over loopback HTTP and real files; the configuration edited is the repository's own
sources.yaml, with all its comments.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import yaml

from civicfeed import work
from civicfeed.addsource import Proposal, add_source, propose
from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.extract import feed as feed_module
from civicfeed.extract.discover import MAX_GUESSES
from civicfeed.fetch import Fetcher, user_agent
from civicfeed.netpolicy import trusted_hosts
from civicfeed.refresh import Inspection, inspect_source
from origin import FIXTURES, Origin

REPO_SOURCES = Path(__file__).parent.parent / "sources.yaml"

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Stadt Beispiel – Presse</title><link>{base}/</link>
<description>d</description>
<item><title>Neue Kita eröffnet</title><link>{base}/news/kita</link>
<pubDate>Tue, 10 Feb 2026 09:00:00 +0100</pubDate><description>Die Kita.</description></item>
<item><title>Wochenmarkt verlegt</title><link>{base}/news/markt</link>
<pubDate>Mon, 09 Feb 2026 12:00:00 +0100</pubDate></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Beispiel Atom</title><id>urn:x</id>
<updated>2026-02-10T09:00:00Z</updated>
<entry><title>Neue Kita eröffnet</title><id>urn:1</id><link href="{base}/news/kita"/>
<updated>2026-02-10T09:00:00Z</updated></entry></feed>"""


def page(head: str = "", body: str = "<p>Willkommen.</p>") -> str:
    return (
        f'<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">'
        f"<title>Stadt Beispiel – Aktuelles</title>{head}</head><body>{body}</body></html>"
    )


def listing_body(base: str) -> str:
    items = "".join(
        f'<li class="entry"><span class="when">{day}.02.2026</span>'
        f'<h2><a href="{base}/news/{slug}">{title}</a></h2><p>Mehr über {title} im Text.</p></li>'
        for day, slug, title in (
            ("10", "kita", "Neue Kita eröffnet"),
            ("09", "markt", "Wochenmarkt verlegt"),
            ("05", "bad", "Freibad öffnet früher"),
        )
    )
    nav = '<nav><a href="/">Start</a><a href="/a">A</a></nav>'
    return f'{nav}<main><ul class="news">{items}</ul></main>'


def copy_sources(tmp_path: Path) -> Path:
    target = tmp_path / "sources.yaml"
    shutil.copyfile(REPO_SOURCES, target)
    return target


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out + out.err


def only_inserted(before: str, after: str) -> list[str]:
    """The lines ``after`` adds to ``before``, asserting that nothing else changed."""
    old, new = before.split("\n"), after.split("\n")
    start = 0
    while old[start] == new[start]:
        start += 1
    added = len(new) - len(old)
    assert added > 0
    assert new[:start] + new[start + added :] == old, "bytes outside the new block changed"
    return new[start : start + added]


def test_page_linking_rss_and_atom_becomes_a_feed_source(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    links = (
        '<link rel="alternate" type="application/rss+xml" title="Presse (RSS)" href="/presse.rss">'
        '<link rel="alternate" type="application/atom+xml" title="Presse (Atom)"'
        ' href="/presse.atom">'
        '<link rel="alternate" type="application/rss+xml" title="Kommentare" href="/comments.rss">'
    )
    origin.set("/aktuelles/", page(links, listing_body(base)))
    origin.set("/presse.rss", RSS.format(base=base), content_type="application/rss+xml")
    origin.set("/presse.atom", ATOM.format(base=base), content_type="application/atom+xml")
    config = copy_sources(tmp_path)
    before = config.read_text(encoding="utf-8")

    code, output = run(capsys, "add", origin.url("/aktuelles/"), "--config", str(config))

    assert code == 0, output
    assert "the page names 2 feed(s)" in output  # the comments feed is not one of them
    assert f"using RSS {base}/presse.rss" in output
    assert "Neue Kita eröffnet" in output
    assert "2 items" in output
    block = yaml.safe_load("\n".join(only_inserted(before, config.read_text(encoding="utf-8"))))
    assert block == [
        {
            "id": "127-0-0-1-aktuelles",
            "title": "Stadt Beispiel – Presse",
            "url": f"{base}/presse.rss",
            "home": f"{base}/aktuelles/",
        }
    ]
    # the RSS feed answered: the Atom feed and the comments were never fetched
    assert not origin.hits("/presse.atom")
    assert not origin.hits("/comments.rss")
    assert len(origin.hits("/aktuelles/")) == 1
    assert len(origin.hits("/presse.rss")) == 1
    assert load_config(config).source("127-0-0-1-aktuelles").kind == "feed"


def test_a_linked_feed_that_fails_falls_back_to_the_next(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    links = (
        '<link rel="alternate" type="application/rss+xml" href="/gone.rss">'
        '<link rel="alternate" type="application/atom+xml" href="/presse.atom">'
    )
    origin.set("/", page(links))
    origin.set("/presse.atom", ATOM.format(base=base), content_type="application/atom+xml")
    config = copy_sources(tmp_path)

    code, output = run(capsys, "add", origin.url("/"), "--config", str(config), "--id", "beispiel")

    assert code == 0, output
    assert "/gone.rss: HTTP 404" in output
    assert load_config(config).source("beispiel").url == f"{base}/presse.atom"


def test_page_linking_no_feed_and_showing_no_listing_adds_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/about", page(body="<h1>Über uns</h1><p>Die Stadt Beispiel liegt am Fluss.</p>"))
    config = copy_sources(tmp_path)
    before = config.read_bytes()

    code, output = run(capsys, "add", origin.url("/about"), "--config", str(config))

    assert code == 1, output
    assert "without a feed and without a recognisable listing" in output
    assert "nothing to add" in output
    assert f"tried {origin.url('/feed/')}: HTTP 404" in output  # it says what it tried
    assert config.read_bytes() == before
    guesses = [r.path for r in origin.requests if r.path != "/about"]
    assert 0 < len(guesses) <= MAX_GUESSES, guesses  # a few guesses, politely


def test_listing_without_feed_is_added_with_pinned_selectors_and_comments_kept(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    origin.set("/aktuelles/", page(body=listing_body(base)))
    config = copy_sources(tmp_path)
    before = config.read_text(encoding="utf-8")

    code, output = run(
        capsys, "add", origin.url("/aktuelles/"), "--config", str(config), "--title", "Beispiel"
    )

    assert code == 0, output
    assert "no feed: the page is read as a listing of 3 items" in output
    added = only_inserted(before, config.read_text(encoding="utf-8"))
    assert added[0].startswith("  # added by `civicfeed add` on ")
    assert "\n  - id: bochum" in before
    assert "\n\n  # added by" in config.read_text(encoding="utf-8")
    block = yaml.safe_load("\n".join(added))[0]
    assert block["html"]["item"] == "ul.news > li.entry"
    assert set(block["html"]) >= {"item", "title", "date", "link"}
    # the new block stands after the last source, before the aggregates and their comments
    text = config.read_text(encoding="utf-8")
    assert text.index("- id: 127-0-0-1-aktuelles") < text.index("\nfeeds:")
    assert text.index("- id: bochum") < text.index("- id: 127-0-0-1-aktuelles")

    # the pinned source reads the page as the preview showed it
    code, output = run(capsys, "check", "127-0-0-1-aktuelles", "--config", str(config), "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert shown["detected"] is False
    assert [(i["title"], i["date"][:10]) for i in shown["items"]] == [
        ("Neue Kita eröffnet", "2026-02-10"),
        ("Wochenmarkt verlegt", "2026-02-09"),
        ("Freibad öffnet früher", "2026-02-05"),
    ]


def test_dry_run_writes_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    origin.set("/aktuelles/", page(body=listing_body(base)))
    config = copy_sources(tmp_path)
    before, stamp = config.read_bytes(), config.stat().st_mtime_ns

    code, output = run(
        capsys, "add", origin.url("/aktuelles/"), "--config", str(config), "--dry-run"
    )

    assert code == 0, output
    assert "dry run" in output
    assert "- id: 127-0-0-1-aktuelles" in output
    assert "Wochenmarkt verlegt" in output
    assert config.read_bytes() == before
    assert config.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.yaml"]


def test_a_feed_address_is_added_as_it_is_and_ids_stay_unique(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/partners.json", "partners.json", content_type="application/feed+json")
    config = tmp_path / "sources.yaml"  # no file yet: add creates it

    for _ in range(2):
        code, output = run(capsys, "add", origin.url("/partners.json"), "--config", str(config))
        assert code == 0, output
        assert "is a feed with" in output

    ids = [s.id for s in load_config(config).sources]
    assert ids == ["127-0-0-1-partners", "127-0-0-1-partners-2"]


def test_an_address_that_fails_adds_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy_sources(tmp_path)
    before = config.read_bytes()
    code, output = run(capsys, "add", origin.url("/missing"), "--config", str(config))
    assert code == 1
    assert "HTTP 404" in output
    assert config.read_bytes() == before


def test_an_id_that_exists_is_a_usage_error(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy_sources(tmp_path)
    code, output = run(capsys, "add", origin.url("/x"), "--config", str(config), "--id", "bochum")
    assert code == 2
    assert "'bochum' exists already" in output
    assert not origin.requests


def test_guessed_feed_is_taken_only_when_it_carries_the_pages_stories(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    wordpress = '<meta name="generator" content="WordPress 6.5">'
    origin.set("/aktuelles/", page(wordpress, listing_body(base)))
    origin.set("/aktuelles/feed/", RSS.format(base=base), content_type="application/rss+xml")
    origin.set(
        "/blog/",
        page(wordpress, listing_body(base).replace("/news/", "/blog/")),
    )
    origin.set("/blog/feed/", RSS.format(base=base), content_type="application/rss+xml")
    config = copy_sources(tmp_path)

    code, output = run(capsys, "add", origin.url("/aktuelles/"), "--config", str(config))
    assert code == 0, output
    assert f"found a feed at {base}/aktuelles/feed/" in output

    code, output = run(capsys, "add", origin.url("/blog/"), "--config", str(config))
    assert code == 0, output
    assert "but only 0 of its first 2 stories are on the page: not taken" in output
    sources = {s.id: s for s in load_config(config).sources}
    assert sources["127-0-0-1-aktuelles"].url == f"{base}/aktuelles/feed/"
    assert sources["127-0-0-1-blog"].html is not None


def test_fixture_listings_pin_what_detection_reads(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sources.yaml"
    for name in ("herne-2019.html", "typo3-news.html", "bochum-latin1.html", "herne-2026.html"):
        media = "text/html; charset=iso-8859-1" if "latin1" in name else "text/html"
        origin.serve_fixture(f"/{name}", name, content_type=media)
        code, output = run(capsys, "add", origin.url(f"/{name}"), "--config", str(config))
        assert code == 0, output
        assert "html:\n      item:" in output, output
    assert (FIXTURES / "herne-2019.html").exists()


def test_a_feed_without_entries_adds_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = '<?xml version="1.0"?><rss version="2.0"><channel><title>Leer</title></channel></rss>'
    origin.set("/leer.rss", empty, content_type="application/rss+xml")
    config = copy_sources(tmp_path)
    before = config.read_bytes()
    code, output = run(capsys, "add", origin.url("/leer.rss"), "--config", str(config))
    assert code == 1
    assert "is a feed without entries; nothing to add" in output
    assert config.read_bytes() == before


def count_reads(monkeypatch: pytest.MonkeyPatch, module: Any, parser: str) -> list[str]:
    """A list that grows by "here" whenever ``module.parser`` parses a document in this
    process, and by "worker" whenever a parsing job is given to a worker."""
    reads: list[str] = []
    parse = getattr(module, parser)

    def counted_parse(*args: Any, **options: Any) -> Any:
        reads.append("here")
        return parse(*args, **options)

    real_run = work.run

    async def counted_run(function: Any, *args: Any, **options: Any) -> Any:
        if options.get("what") == "parsing":
            reads.append("worker")
        return await real_run(function, *args, **options)

    monkeypatch.setattr(module, parser, counted_parse)
    monkeypatch.setattr(work, "run", counted_run)
    return reads


def test_a_listing_is_read_for_its_preview_once_after_it_was_pinned(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finding the page's feeds and pinning its selectors read the page; the preview then
    # reads it once more, as a refresh will (in a worker), and not again to show the selectors
    url = origin.url("/aktuelles/")
    origin.set("/aktuelles/", page(body=listing_body(origin.url(""))))
    reads = count_reads(monkeypatch, lxml.html, "document_fromstring")  # every HTML page

    async def proposed() -> Proposal:
        async with Fetcher(agent=user_agent(), trusted=trusted_hosts([url])) as fetcher:
            return await propose(url, fetcher=fetcher)

    proposal = asyncio.run(proposed())
    assert "worker" not in reads
    proposing = len(reads)
    reads.clear()
    origin.requests.clear()

    added = asyncio.run(add_source(copy_sources(tmp_path), url, source_id="aktuelles"))

    assert added.proposal.source == {**proposal.source, "id": "aktuelles"}
    assert added.proposal.source["html"]["item"] == "ul.news > li.entry"
    assert len(origin.hits("/aktuelles/")) == 1
    assert reads == ["here"] * proposing + ["worker"]
    assert added.inspection.listing is not None
    assert added.inspection.listing.detected is False
    assert [c.title for c in added.inspection.candidates] == [
        "Neue Kita eröffnet",
        "Wochenmarkt verlegt",
        "Freibad öffnet früher",
    ]


def shown(inspection: Inspection) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (c.title, c.link, c.published.isoformat() if c.published else None, c.summary)
        for c in inspection.candidates
    ]


@pytest.mark.parametrize(
    ("address", "feed"),
    [("/presse.rss", "/presse.rss"), ("/aktuelles/", "/presse.rss"), ("/blog/", "/blog/feed/")],
    ids=["feed", "linked feed", "guessed feed"],
)
def test_the_feed_is_fetched_once_read_once_and_previewed_as_check_reads_it(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str, feed: str
) -> None:
    base = origin.url("")
    links = '<link rel="alternate" type="application/rss+xml" href="/presse.rss">'
    origin.set("/aktuelles/", page(links, listing_body(base)))
    wordpress = '<meta name="generator" content="WordPress 6.5">'
    origin.set("/blog/", page(wordpress, listing_body(base)))  # names no feed: one is guessed
    for path in ("/presse.rss", "/blog/feed/"):
        origin.set(path, RSS.format(base=base), content_type="application/rss+xml")
    config = copy_sources(tmp_path)
    reads = count_reads(monkeypatch, feed_module, "_extract_xml")  # every RSS or Atom feed

    added = asyncio.run(add_source(config, origin.url(address), source_id="presse"))

    assert added.written
    # each document fetched once: the feed, and for a page that leads to it, the page first
    assert [r.path for r in origin.requests] == list(dict.fromkeys([address, feed]))
    assert reads == ["here"]  # read once to decide, and that reading is the preview
    # the same entries as `check` shows for the source once added (its own fetch and parse)
    loaded = load_config(config)
    again = asyncio.run(inspect_source(loaded, loaded.source("presse")))
    assert again.error is None
    assert len(origin.hits(feed)) == 2
    assert shown(added.inspection) == shown(again)
    assert [title for title, *_ in shown(again)] == ["Neue Kita eröffnet", "Wochenmarkt verlegt"]
    assert added.inspection.warnings == again.warnings
