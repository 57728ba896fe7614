"""Malformed input, generated: extraction either works or says why; output stays valid XML."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from civicfeed.config import HtmlRules
from civicfeed.dedup import merge_stories, plan_source
from civicfeed.errors import ExtractError
from civicfeed.extract.feed import extract_feed
from civicfeed.extract.html import extract_html
from civicfeed.models import Candidate, Extraction, Fetched
from civicfeed.normalise import normalise
from civicfeed.render import FeedInfo, render_atom, render_rss
from origin import FIXTURES

BERLIN = ZoneInfo("Europe/Berlin")
HTML = {
    name: (FIXTURES / name).read_bytes()
    for name in ("herne-2019.html", "herne-2026.html", "bochum-latin1.html", "typo3-news.html")
}
FEEDS = {
    name: (FIXTURES / name).read_bytes()
    for name in ("dortmund-cp1252.rss", "muelheim.atom", "partners.json")
}
RULES = [
    HtmlRules(),
    HtmlRules(
        item="article, tr, .teaser", title="h3, a", date=".news-date, td", summary="p, .kurz"
    ),
]
# CIVICFEED_FUZZ_EXAMPLES=5000 for a long hunt; the default keeps the suite quick
FUZZ = settings(
    max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def mutated(draw: st.DrawFn, documents: dict[str, bytes]) -> bytes:
    data = bytearray(documents[draw(st.sampled_from(sorted(documents)))])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["cut", "insert", "repeat", "truncate", "swap"]))
        size = draw(st.integers(1, 400))
        if kind == "cut":
            del data[at : at + size]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "repeat":
            data[at:at] = data[at : at + size] * draw(st.integers(2, 5))
        elif kind == "truncate":
            del data[at:]
        else:
            data[at : at + 1] = draw(
                st.sampled_from(
                    [b"<", b">", b"&", b"\x00", b"\x85", b"]]>", b"<!--", b"\xe2\x80", b"<![CDATA["]
                )
            )
    return bytes(data)


def fetched(body: bytes, content_type: str) -> Fetched:
    return Fetched(
        "https://www.example.org/liste/",
        200,
        MappingProxyType({"content-type": content_type}),
        body,
    )


def attempt(run: Callable[[], Extraction]) -> Extraction | None:
    """The extraction, or None after an ExtractError with a reason; anything else fails."""
    try:
        return run()
    except ExtractError as error:
        reason = str(error)
    assert reason.strip()
    return None


def assert_renders_valid(extraction: Extraction) -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    candidates: list[Candidate] = []
    for item in extraction.items:
        candidate, _ = normalise(
            item, source_id="s", base_url="https://www.example.org/", zone=BERLIN
        )
        if candidate is not None:
            candidates.append(candidate)
    plan = plan_source([], candidates, now=now, zone=BERLIN)
    stories = merge_stories(plan.new, ["s"], BERLIN)
    info = FeedInfo(
        id="s",
        title="Quelle",
        description="d",
        home="https://www.example.org/",
        base_url="https://feeds.example.org/",
    )
    for document in (render_rss(info, stories, BERLIN), render_atom(info, stories, BERLIN)):
        root = etree.fromstring(document)  # raises on anything that is not well-formed XML
        assert root is not None
        assert not feedparser.parse(document).bozo


@FUZZ
@given(
    body=mutated(HTML),
    rules=st.sampled_from(RULES),
    content_type=st.sampled_from(
        ["text/html", "text/html; charset=utf-8", "text/html; charset=iso-8859-1", ""]
    ),
)
def test_malformed_html_never_crashes(body: bytes, rules: HtmlRules, content_type: str) -> None:
    extraction = attempt(lambda: extract_html(fetched(body, content_type), rules))
    if extraction is not None:
        assert extraction.items
        assert_renders_valid(extraction)


@FUZZ
@given(
    body=mutated(FEEDS),
    content_type=st.sampled_from(
        [
            "application/rss+xml",
            "application/atom+xml",
            "text/xml; charset=iso-8859-1",
            "application/feed+json",
            "",
        ]
    ),
)
def test_malformed_feeds_never_crash(body: bytes, content_type: str) -> None:
    extraction = attempt(lambda: extract_feed(fetched(body, content_type)))
    if extraction is not None:
        assert_renders_valid(extraction)


@FUZZ
@given(
    title=st.text(min_size=1, max_size=500),
    teaser=st.text(max_size=2000),
    href=st.text(max_size=100),
)
def test_any_text_in_a_listing_makes_a_valid_feed(title: str, teaser: str, href: str) -> None:
    from html import escape

    page = (
        f'<html><body><div class="item"><h3>{escape(title)}</h3><p>{teaser}</p>'
        f'<a href="{escape(href)}">mehr</a></div>'
        f'<div class="item"><h3>Zweite Meldung</h3><p>Text</p><a href="/2">mehr</a></div>'
        "</body></html>"
    )
    rules = HtmlRules(item=".item", title="h3", summary="p", link="a")
    body = page.encode("utf-8", "surrogatepass")
    extraction = attempt(lambda: extract_html(fetched(body, "text/html; charset=utf-8"), rules))
    if extraction is not None:
        assert_renders_valid(extraction)
