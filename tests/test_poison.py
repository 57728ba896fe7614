"""Publishing cannot be poisoned: a character that XML cannot carry, whether an origin sends it
as a character reference or an old store holds it, never stops a feed, the index or the OPML
from being written."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree

from civicfeed import publish
from civicfeed.dedup import Story
from civicfeed.render import FeedInfo, render_atom, render_json, render_preview, render_rss
from civicfeed.store.migrations import LATEST
from civicfeed.xmlsafe import is_xml_safe
from conftest import BASE, write_sources
from feedcheck import check_atom, check_rss
from oldstore import downgrade
from origin import Origin
from store.builders import make_entry
from test_refresh import refresh
from test_service import Process, processes

__all__ = ["processes"]  # the fixture

# each becomes a character that XML 1.0 cannot carry once the summary is sanitised
REFERENCES = ("&amp;#1;", "&#x0B;", "&#27;", "&#x7f;", "&#xFFFE;")


def poisoned_rss() -> str:
    """Five items, one reference each, in the escaped and in the CDATA form origins use."""
    items = []
    for number, reference in enumerate(REFERENCES, start=1):
        escaped = reference.replace("&", "&amp;") if reference != "&amp;#1;" else reference
        items.append(
            f"""<item><title>Meldung {number} {escaped}</title>
            <link>https://www.example.org/meldung/{number}</link>
            <guid>meldung-{number}</guid>
            <pubDate>Mon, 0{number} Jun 2026 10:00:00 +0200</pubDate>
            <description>Text {escaped} und mehr</description>
            <content:encoded><![CDATA[<p>Text {reference} und mehr</p>]]></content:encoded>
            </item>"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Vergiftet</title><link>https://www.example.org/</link><description>x</description>
{"".join(items)}
</channel></rss>"""


HEALTHY = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Gesund</title><link>https://gesund.example/</link>
<description>x</description>
<item><title>Gesunde Meldung</title><link>https://gesund.example/1</link>
<pubDate>Tue, 02 Jun 2026 09:00:00 +0200</pubDate><description>Alles gut.</description></item>
</channel></rss>"""


@pytest.fixture
def config(origin: Origin, tmp_path: Path) -> Path:
    origin.set("/poison.rss", poisoned_rss(), content_type="application/rss+xml")
    origin.set("/healthy.rss", HEALTHY, content_type="application/rss+xml")
    return write_sources(
        tmp_path,
        f"  - id: poison\n    title: Vergiftete Quelle\n    url: {origin.url('/poison.rss')}\n"
        "    max_entries: 2\n"
        f"  - id: healthy\n    title: Gesunde Quelle\n    url: {origin.url('/healthy.rss')}\n",
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [poison, healthy]\n",
    )


def assert_everything_written(feeds: Path) -> None:
    for feed in ("poison", "healthy", "alle"):
        check_rss(feeds / f"{feed}.rss", self_url=f"{BASE}{feed}.rss")
        check_atom(feeds / f"{feed}.atom", self_url=f"{BASE}{feed}.atom")
        json.loads((feeds / f"{feed}.json").read_bytes())
        assert is_xml_safe((feeds / f"{feed}.html").read_text(encoding="utf-8"))
    # the poisoned source has 5 stories at 2 per page: two complete archive pages
    for number in (1, 2):
        for extension in ("rss", "atom"):
            page = feeds / "archive" / "poison" / f"{number}.{extension}"
            etree.fromstring(page.read_bytes())
    etree.fromstring((feeds / "feeds.opml").read_bytes())
    assert "Gesunde Quelle" in (feeds / "index.html").read_text(encoding="utf-8")


def stored_texts(state: Path) -> list[str]:
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT title, link, summary, guid FROM entries").fetchall()
    return [value for row in rows for value in row if value is not None]


def test_control_character_references_never_stop_publishing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = refresh(config, capsys)
    assert code == 0, output
    feeds = config.parent / "feeds"
    assert_everything_written(feeds)
    titles = [e.findtext("title") for e in etree.parse(feeds / "alle.rss").iter("item")]
    # a title is text, decoded once: the reference written as "&amp;#x0B;" is the literal text
    # "&#x0B;" (feedparser writes the hexadecimal digits in lower case), kept as text, and XML
    # carries it escaped
    literal = [r.replace("&amp;", "&").lower() for r in REFERENCES]
    assert sorted(titles) == ["Gesunde Meldung"] + [
        f"Meldung {n} {r}" for n, r in enumerate(literal, 1)
    ]
    texts = stored_texts(config.parent / ".civicfeed" / "state.db")
    assert len(texts) == 6 * 4 - 1  # the healthy item has no guid
    assert all(is_xml_safe(text) for text in texts)
    assert any("Text  und mehr" in text for text in texts)  # the text around them is kept


def test_entries_stored_with_control_characters_are_repaired_by_a_migration(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refresh(config, capsys)[0] == 0
    state = config.parent / ".civicfeed" / "state.db"
    feeds = config.parent / "feeds"
    # the store as an older civicfeed left it: control characters stored, and every feed
    # failing since, so no digest of a written feed and no files
    with sqlite3.connect(state) as db:
        db.execute(
            "UPDATE entries SET title = title || char(27), summary = summary || char(11) "
            "|| char(65534), link = link || char(1)"
        )
    db.close()
    downgrade(state, 2)
    for written in feeds.glob("*.*"):
        written.unlink()
    assert not all(is_xml_safe(text) for text in stored_texts(state))

    code, output = refresh(config, capsys)
    assert code == 0, output
    assert_everything_written(feeds)
    assert all(is_xml_safe(text) for text in stored_texts(state))
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST


def test_a_feed_that_cannot_be_rendered_is_named_and_the_rest_is_written(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = publish.render_atom

    def failing(info: FeedInfo, *args: object, **kwargs: object) -> bytes:
        if info.id == "poison":
            raise ValueError("All strings must be XML compatible")
        return real(info, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publish, "render_atom", failing)
    code, output = refresh(config, capsys)
    assert code == 1
    assert "feed poison cannot be rendered: ValueError: All strings must be XML compatible" in (
        output
    )
    feeds = config.parent / "feeds"
    assert not (feeds / "poison.rss").exists()
    for feed in ("healthy", "alle"):
        check_atom(feeds / f"{feed}.atom", self_url=f"{BASE}{feed}.atom")
    etree.fromstring((feeds / "feeds.opml").read_bytes())
    assert "Vergiftete Quelle" in (feeds / "index.html").read_text(encoding="utf-8")

    monkeypatch.setattr(publish, "render_atom", real)  # fixed: the next run writes it
    assert refresh(config, capsys)[0] == 0
    assert_everything_written(feeds)


def test_the_renderers_guard_against_unsafe_text_themselves() -> None:
    moment = datetime(2026, 6, 1, 8, tzinfo=UTC)
    entry = make_entry(
        "urn:x:1",
        "s\x0b",
        title="Titel\x1b",
        link="https://example.org/\x7f1",
        published=moment,
        summary="<p>Text\x01\ufffe</p>",
    )
    info = FeedInfo(
        id="s", title="Quelle\x0c", description="Meldungen\x08", home="https://example.org/"
    )
    stories = [Story(id="urn:x:1", entry=entry, origins=(), updated=moment)]
    for document in (render_rss(info, stories, UTC), render_atom(info, stories, UTC)):
        root = etree.fromstring(document)
        assert "Titel" in etree.tostring(root, encoding="unicode")
    assert is_xml_safe(render_json(info, stories, UTC).decode())
    assert is_xml_safe(render_preview(info, stories, UTC).decode())


def test_run_starts_and_publishes_from_a_poisoned_store(
    config: Path, capsys: pytest.CaptureFixture[str], processes: list[Process]
) -> None:
    assert refresh(config, capsys)[0] == 0
    state = config.parent / ".civicfeed" / "state.db"
    with sqlite3.connect(state) as db:  # what an older civicfeed stored, and then died on
        db.execute("UPDATE entries SET summary = summary || char(27)")
    db.close()
    downgrade(state, 2)
    feeds = config.parent / "feeds"
    for written in feeds.glob("*.*"):
        written.unlink()
    service = Process("run", "--config", str(config), "--serve", "127.0.0.1:0")
    processes.append(service)
    base = f"http://127.0.0.1:{service.port()}"
    service.wait_for("poison ")  # the server answers before the first refresh has ended
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert "Vergiftete Quelle" in httpx.get(f"{base}/").text
    check_atom(feeds / "poison.atom", self_url=f"{BASE}poison.atom")
    assert service.popen.poll() is None  # still running
    assert service.stop()[0] == 0
    assert not any("Traceback" in line for line in service.seen)
