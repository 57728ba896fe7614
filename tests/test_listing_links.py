"""A listing read with selectors resolves only the links its items use (their link and the
links in their summary); the items must be exactly those read from the page with every link
made absolute first, as detection reads it."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest

from civicfeed.config import HtmlRules
from civicfeed.errors import ExtractError
from civicfeed.extract.html import extract_html
from civicfeed.models import Fetched

HERE = Path(__file__).parent
PAGES = sorted((HERE / "cases" / "listings").glob("*.html")) + sorted(
    (HERE / "fixtures").glob("*.html")
)

# Broad selectors on purpose: many items per page, items inside items, summaries that hold
# the link, links inside and around titles, on real pages with and without <base href>.
RULES = (
    {"item": "li, article, tr, dl, .item, .news", "summary": "p, div, td, dd, span"},
    {"item": "div, section", "title": "h2, h3, h4, strong", "link": "a", "summary": "p"},
    {"item": "p, td", "link": "span, em, img", "summary": "a, img, q, blockquote"},
    {"item": "a, h1, h2, h3", "summary": "span, img, a"},
)

TRICKY = """<html><head><base href="/sub/dir/"><base href="../other/"></head><body>
<div class="i"><h3>A</h3><a href="  x.html?a=1&amp;b ">more</a>
  <p class="s">t <a href="../y">y</a> <img src=" /img.png "> <q cite="c.html">q</q></p></div>
<div class="i"><h3>B</h3><object class="s" data="d.swf" href="o.html">o</object>
  <a href="#top">top</a></div>
<div class="i"><h3>C</h3><a href="http:rel">r</a><p class="s" style="background:url(bg.png)">
  <a href="//cdn.example/a">c</a> <a href="http://[::1">unreadable</a></p></div>
<div class="i"><h3>D</h3><a href="javascript:void(0)">j</a>
  <div class="s"><div class="i"><h3>E</h3><a href="e.html">e</a></div></div></div>
<a href="/around"><div class="i"><h3>F</h3><span class="s">no link</span></div></a>
<div class="i"><h3>G</h3><a href="?q">q</a><a href="">empty</a><a class="l">none</a></div>
</body></html>"""

TRICKY_RULES = (
    {"item": "div.i", "title": "h3", "summary": ".s"},
    {"item": "div.i", "link": ".l, a", "summary": ".s, p"},
    {"item": "div.i, object", "link": "object, a"},
)


def _pages() -> list[tuple[str, Fetched]]:
    pages = []
    for path in PAGES:
        meta = path.with_suffix(".json")
        url = (
            json.loads(meta.read_text(encoding="utf-8")).get("url")
            if meta.exists() and path.parent.name == "listings"
            else None
        )
        headers = MappingProxyType({"content-type": "text/html"})
        address = url or f"https://city.example/news/{path.stem}/"
        pages.append((path.stem, Fetched(address, 200, headers, path.read_bytes())))
    return pages


def _both(fetched: Fetched, rules: HtmlRules) -> tuple[object, object]:
    def read(resolve_all_links: bool) -> object:
        try:
            return extract_html(fetched, rules, resolve_all_links=resolve_all_links)
        except ExtractError as exc:
            return str(exc)

    return read(False), read(True)


@pytest.mark.parametrize(("name", "fetched"), _pages(), ids=[name for name, _ in _pages()])
def test_a_listing_reads_the_same_items_with_only_their_links_resolved(
    name: str, fetched: Fetched
) -> None:
    read = 0
    for selectors in RULES:
        lazily, eagerly = _both(fetched, HtmlRules(**selectors))
        assert lazily == eagerly, (name, selectors)
        read += not isinstance(lazily, str)
    assert read, "no selector read any item: the page proves nothing"


@pytest.mark.parametrize("selectors", TRICKY_RULES, ids=[s["item"] for s in TRICKY_RULES])
def test_links_are_resolved_like_lxml_resolves_them_whatever_they_look_like(
    selectors: dict[str, str],
) -> None:
    fetched = Fetched(
        "https://site.example/base/page.html?x=1",
        200,
        MappingProxyType({"content-type": "text/html"}),
        TRICKY.encode(),
    )
    lazily, eagerly = _both(fetched, HtmlRules(**selectors))
    assert not isinstance(lazily, str), lazily
    assert lazily == eagerly
    links = [item.link for item in lazily.items]  # type: ignore[attr-defined]
    # the last <base href> as written ("../other/x.html" is "other/x.html" for urljoin),
    # then the page's address: lxml's order
    assert "https://site.example/base/other/x.html?a=1&b" in links


def test_one_unreadable_link_on_a_page_with_a_base_fails_nothing() -> None:
    """lxml's <base href> step raised for a link urljoin cannot read (the whole page
    failed with a ValueError); such a link is left as written, like any other."""
    fetched = Fetched(
        "https://site.example/base/page.html",
        200,
        MappingProxyType({"content-type": "text/html"}),
        TRICKY.encode(),
    )
    for resolve_all_links in (False, True):
        extraction = extract_html(
            fetched, HtmlRules(item="div.i", title="h3"), resolve_all_links=resolve_all_links
        )
        assert [item.title for item in extraction.items] == ["A", "B", "C", "D", "E", "F", "G"]
    with pytest.raises(ExtractError, match="no listing found"):  # read, and found no listing
        extract_html(fetched, HtmlRules())
