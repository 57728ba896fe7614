"""Rendering as data: every case in tests/cases/render/ renders to exactly the bytes stored
beside its input (tests/render_cases.py describes the cases and writes them)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import render_cases
from civicfeed.render import Archive, jsonfeed, render_atom, render_rss
from civicfeed.render.feed import rfc822
from civicfeed.render.model import in_zone, zoned_text
from civicfeed.xmlsafe import strip_controls
from figures import record
from render_cases import FILES, case_dirs, generated, load, render_case

CASES = case_dirs()


def test_the_cases_are_there() -> None:
    # every generated case is stored (a case added to the generator needs its files written)
    assert sorted(generated()) == sorted(folder.name for folder in CASES)
    for folder in CASES:
        assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "input.json"])
    record("render cases", f"{len(CASES)} cases, {len(CASES) * len(FILES)} files")


@pytest.mark.parametrize("folder", CASES, ids=[folder.name for folder in CASES])
def test_renders_exactly_the_stored_bytes(folder: Path) -> None:
    rendered = render_case(load(folder))
    assert sorted(rendered) == sorted(FILES)
    for name, data in rendered.items():
        expected = (folder / name).read_bytes()
        assert data.decode("utf-8") == expected.decode("utf-8"), f"{folder.name}/{name}"
        assert data == expected


def test_an_atom_document_is_the_same_whichever_rss_document_came_before() -> None:
    # the Atom document takes the texts the RSS document before it escaped (render/feed.py):
    # rendered alone, after its own RSS document or after another case's, the same bytes
    cases = [load(folder) for folder in CASES]
    for case, folder in zip(cases, CASES, strict=True):
        expected = (folder / "feed.atom").read_bytes()
        info = render_cases.feed_info(case["info"])
        items = render_cases.stories(case["stories"])
        zone = ZoneInfo(case.get("zone", "Europe/Berlin"))
        place = case.get("archive")
        archive = Archive(place["number"], place["newest"]) if place else None
        for before in cases:
            render_case(before)  # its RSS document, then the rest
            render_rss(
                render_cases.feed_info(before["info"]),
                render_cases.stories(before["stories"]),
                zone,
            )
            assert render_atom(info, items, zone, archive) == expected, folder.name


@pytest.mark.parametrize("folder", CASES, ids=[folder.name for folder in CASES])
def test_the_stored_feeds_are_well_formed(folder: Path) -> None:
    for name in ("feed.rss", "feed.atom"):
        etree.fromstring((folder / name).read_bytes())


def lxml_text(fragment: str) -> str:
    return " ".join(
        lxml.html.fragment_fromstring(fragment, create_parent="div").text_content().split()
    )


TOKENS = (
    *("<p>", "</p>", "<b>", "</b>", "<br>", "<br/>", "<BR />", "<P CLASS=x>", "<o:p>"),
    *("<a href='x'>", '<a href="y&amp;z">', "</a>", "<img alt=x>", "<img src=x alt='Bild'>"),
    *("<div class=a b>", "<ul><li>", "</li>", "<table><tr><td>", "</td>", "<p =x>"),
    *("<a title=it's>", '<a title="a>b">', "<a\nhref=x>", '<a b"c">', "< p>", "</ p>"),
    *("<html>", "<body>", "<title>", "<head>", "<script>", "</script>", "<style>"),
    *("<!-- c -->", "<!--", "-->", "<![CDATA[", "]]>", "<?x?>", "<!DOCTYPE html>"),
    *("Text", "mehr Text", " ", "  ", "\n", "\t", "\r\n", "Ä", "\u00a0", "\u200b", "🎉"),
    *("&amp;", "&nbsp;", "&euro", "&#169;", "&#0;", "&notit;", "&", "<", ">", '"', "'", "="),
    *("1 < 2", "a>b", "<3", "<ä>", "<a", "</", "/>", "<x-y z=1>", "<a href=x=y>"),
)


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12))
def test_a_summary_as_plain_text_is_what_lxml_reads(tokens: list[str]) -> None:
    # JSON Feed's summary of an item with an article: plain text; sanitised summaries are
    # read without a parser, and anything else goes to lxml; both ways give the same text
    fragment = "".join(tokens)
    try:
        expected = lxml_text(fragment)
    except (AssertionError, lxml.etree.ParserError):  # fragment_fromstring cannot read it
        assert isinstance(jsonfeed._text(fragment), str)
    else:
        assert jsonfeed._text(fragment) == expected


def test_plain_text_of_sanitised_summaries_needs_no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parser(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(jsonfeed.lxml.html, "fragment_fromstring", no_parser)
    summary = '<p>Die <b>Stadt</b> informiert.</p><p><a href="https://x.example/?a=1">Mehr</a></p>'
    assert jsonfeed._text(summary) == "Die Stadt informiert.Mehr"


ATOM = "{http://www.w3.org/2005/Atom}"
TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from("&<>\"'\r\n\t]]>"), max_size=20)


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "200")), deadline=None)
@given(title=TEXT, summary=TEXT, link=TEXT, content=TEXT, home=TEXT, source=TEXT)
def test_any_text_is_written_as_itself(
    title: str, summary: str, link: str, content: str, home: str, source: str
) -> None:
    # the writer escapes every text and attribute: whatever the strings, both documents
    # parse, and each string reads back as written (less what XML cannot carry at all)
    case = load(CASES[0])
    story = case["stories"][0]
    story["entry"].update(title=title or "T", summary=summary, link=link, content=content)
    case["info"].update(home=home or "H", title=source or "S", description=source or "D")
    source_ref = case["info"]["sources"][story["entry"]["source_id"]]
    source_ref.update(page=link, title=source)
    case["info"]["aggregate"] = True
    case["stories"] = [story]
    rendered = render_case(case)
    rss = etree.fromstring(rendered["feed.rss"]).find("channel")
    atom = etree.fromstring(rendered["feed.atom"])
    assert rss is not None
    item, entry = rss.find("item"), atom.find(f"{ATOM}entry")
    assert item is not None
    assert entry is not None
    safe = strip_controls
    assert (item.findtext("title") or "") == (entry.findtext(f"{ATOM}title") or "")
    assert (entry.findtext(f"{ATOM}title") or "") == safe(title or "T")
    assert rss.findtext("link") == safe(home or "H")
    assert atom.find(f"{ATOM}link").get("href") == safe(home or "H")  # type: ignore[union-attr]
    # (without a link of its own, the entry links to its source's page: here the same text)
    assert entry.find(f"{ATOM}link").get("href") == safe(link)  # type: ignore[union-attr]
    assert (item.findtext("link") or "") == safe(link)
    assert (entry.findtext(f"{ATOM}summary") or "") == safe(summary)
    assert (entry.findtext(f"{ATOM}content") or "") == safe(content)
    assert (item.findtext("description") or "") == (safe(summary) or safe(content))
    assert (entry.findtext(f"{ATOM}source/{ATOM}title") or "") == safe(source)
    assert (item.findtext("source") or "") == safe(source)
    assert not feedparser.parse(rendered["feed.rss"]).bozo
    assert not feedparser.parse(rendered["feed.atom"]).bozo


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONES = ["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "UTC"]


@given(
    st.datetimes(
        min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(_ZONES),
)
def test_a_date_is_written_in_the_zone_asked_for_whatever_was_written_before(
    moment: datetime, name: str
) -> None:
    # the dates of the stories are remembered once written: by instant and zone, never only
    # by instant (the same moment in two zones, and in a zone and then in UTC)
    for zone_name in (name, *_ZONES):
        zone = ZoneInfo(zone_name)
        assert zoned_text(moment, zone) == in_zone(moment, zone).isoformat()
    shifted = moment.astimezone(timezone(timedelta(hours=5)))  # the same instant, not in UTC
    assert zoned_text(shifted, ZoneInfo(name)) == zoned_text(moment, ZoneInfo(name))


@given(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_a_date_in_rss_is_what_strftime_writes_in_the_c_locale(moment: datetime) -> None:
    # English names whatever the locale; the year as it is (not padded), the offset to the
    # second where a zone's offset had seconds (local mean time)
    day, month = DAYS[moment.weekday()], MONTHS[moment.month - 1]
    expected = moment.strftime(f"{day}, %d {month} {moment.year} %H:%M:%S %z")
    assert rfc822(moment) == expected
