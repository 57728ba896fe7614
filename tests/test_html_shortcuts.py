"""The listing reader's shortcuts against the plain steps they replace: the first element a
simple selector finds by walking the tree is the first its XPath finds, and the copy of a
summary with its links resolved is the one the element-by-element reading made."""

from __future__ import annotations

import copy
import os

import lxml.etree
import lxml.html
from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed.css import compile_selector
from civicfeed.extract import html

EXAMPLES = int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "500"))

_OPEN = [
    "<div>",
    '<div class="news-text">',
    '<div class=" news-text\tmore ">',
    '<div class="news-textx">',
    '<p class="news-date">',
    '<p class="a\u00a0news-date">',
    '<p class="News-Date">',
    '<span class="more b">',
    '<a class="more" href="../x.html">',
    '<a href="/y?a=1&amp;b=2">',
    '<a href=" javascript:void(0) ">',
    '<a class="more">',
    "<h3>",
    '<h3 class="news-title">',
    "<H3>",
    "<svg:h3>",
    '<img src="i.png" alt="">',
    '<img srcset="a.png 1x">',
    '<div style="background: url(b.png)">',
    '<object data="o.swf">',
    '<use xlink:href="#i">',
    '<form action="send">',
    '<blockquote cite="//other.example/q">',
    "<!-- c -->",
]
_CLOSE = ["</div>", "</p>", "</span>", "</a>", "</h3>", "</H3>", "</svg:h3>", "</object>"]
_TEXT = ["text", " ", "Mehr im ", "&amp;", "\n"]
pages = st.lists(st.sampled_from(_OPEN + _CLOSE + _TEXT), max_size=25).map(
    lambda parts: "<html><body><main>" + "".join(parts) + "</main></body></html>"
)
SELECTORS = ["h3", "H3", "p", "a", "div", ".news-text", ".news-date", ".more", "a.more"]
SELECTORS += ["span.more.b", ".more.b", "h3.news-title", "div.news-text", ".News-Date", "x"]
BASES = [html._Base("https://city.example/news/page.html", "/s12/"), html._Base("http://h/a")]


def _root(page: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(page)


@settings(max_examples=EXAMPLES, deadline=None)
@given(pages, st.sampled_from(SELECTORS))
@example('<p><a class="more" href="x">a</a><span class="more">b</span></p>', ".more")
@example('<div class=" news-text\tmore "><h3>t</h3></div>', "div.news-text")
def test_the_first_match_is_the_selectors_first(page: str, selector: str) -> None:
    assert (html._simple_selector(selector) is not None) == selector[0].isalpha()
    for node in _root(page).iter(lxml.etree.Element):
        found = compile_selector(selector)(node)
        assert html._first(node, selector) is (found[0] if found else None)


def test_other_selectors_are_evaluated_as_xpath() -> None:
    root = _root("<div><p class='a'>x</p><section><p>y</p></section></div>")
    for selector in ("section > p", "p:first-child", "[class]", "*", "div p", ".-a", "p, b", ".a"):
        assert html._simple_selector(selector) is None
        found = compile_selector(selector)(root)
        assert html._first(root, selector) is (found[0] if found else None)


def _absolute_copy_element_by_element(
    base: html._Base, element: lxml.html.HtmlElement
) -> lxml.html.HtmlElement:
    """html._Base.absolute_copy as it looked at every element of the copy."""

    def linked(e: lxml.etree._Element) -> bool:
        return e.tag in html._LINKS_ELSEWHERE or any(
            name in html._LINK_ATTRIBUTES or name == "style" for name in e.attrib
        )

    if not any(linked(e) for e in element.iter(lxml.etree.Element)):
        return element
    copied = copy.deepcopy(element)
    elements = list(copied.iter(lxml.etree.Element))
    if any(e.tag in html._LINKS_ELSEWHERE or "style" in e.attrib for e in elements):
        for href in (base.href, base.url):
            if href:
                copied.make_links_absolute(href, resolve_base_href=False, handle_failures="ignore")
        return copied
    for found in elements:
        for name, value in found.attrib.items():
            if name in html._LINK_ATTRIBUTES:
                found.set(name, base.resolve(value))
    return copied


@settings(max_examples=EXAMPLES, deadline=None)
@given(pages, st.sampled_from(BASES))
@example('<div><a href="../x">a</a><img src="i.png"></div>', BASES[0])
@example("<div><p>no links</p></div>", BASES[0])
@example('<div><a href="x">a</a><p style="color: red">b</p></div>', BASES[1])
def test_summaries_are_copied_with_the_links_resolved_alike(page: str, base: html._Base) -> None:
    for node in _root(page).iter(lxml.etree.Element):
        new = base.absolute_copy(node)
        old = _absolute_copy_element_by_element(base, node)
        assert (new is node) == (old is node)
        assert lxml.html.tostring(new) == lxml.html.tostring(old)


@settings(max_examples=EXAMPLES, deadline=None)
@given(pages, st.sampled_from(BASES))
@example('<div><a href="../x">a</a><img src="i.png"></div>', BASES[0])
@example('<div><a href="https://city.example/x">a</a><a href="y">b</a></div>', BASES[0])
@example('<div><a href="x">a</a><p style="color: red">b</p></div>', BASES[1])
def test_summaries_are_written_with_links_resolved_and_the_page_left_as_it_was(
    page: str, base: html._Base
) -> None:
    root = _root(page)
    before = lxml.html.tostring(root)
    for node in root.iter(lxml.etree.Element):
        expected = html._inner_html(_absolute_copy_element_by_element(base, node))
        assert base.inner_html(node) == expected
        assert lxml.html.tostring(root) == before
