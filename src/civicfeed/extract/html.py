"""HTML listings: items found by CSS selectors (lxml + cssselect)."""

from __future__ import annotations

import copy
import html
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, cast

import lxml.etree
import lxml.html
import lxml.html.defs

from ..css import compile_selector
from ..errors import ExtractError
from ..models import Extraction, Fetched, Item
from ..urls import urljoin
from . import detect
from .encoding import decode_html

if TYPE_CHECKING:
    from ..config import HtmlRules

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_FEED_ROOT = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)[\s>]", re.DOTALL
)
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


def parse_page(fetched: Fetched) -> tuple[lxml.html.HtmlElement, tuple[str, ...]]:
    """Decode and parse a page, with every link made absolute against its URL or <base>."""
    root, base, warnings = _parse(fetched)
    if base.href:
        root.make_links_absolute(base.href, resolve_base_href=False, handle_failures="ignore")
    root.make_links_absolute(fetched.url, resolve_base_href=False, handle_failures="ignore")
    return root, warnings


@dataclass(frozen=True)
class _Base:
    """What the links of a page are resolved against, the way lxml's make_links_absolute
    resolves them (see parse_page): first the last <base href> as written (if any), then the
    page's address."""

    url: str
    href: str | None = None

    def resolve(self, link: str) -> str:
        return _join(self.url, _join(self.href, link) if self.href else link)

    def inner_html(self, element: lxml.html.HtmlElement) -> str:
        """``element``'s content as HTML with the links in it resolved as parse_page
        resolves them: those in link attributes set in place while it is written, and set
        back after (no copy of the element); anything else from absolute_copy."""
        linked, elsewhere = _links_in(element)
        if elsewhere:
            return _inner_html(self.absolute_copy(element))
        written: list[tuple[lxml.html.HtmlElement, str, str]] = []
        try:
            for _, found in linked:
                for name, value in found.items():
                    if name in _LINK_ATTRIBUTES:
                        resolved = self.resolve(value)
                        if resolved != value:
                            written.append((found, name, value))
                            found.set(name, resolved)
            return _inner_html(element)
        finally:
            for found, name, value in reversed(written):
                found.set(name, value)

    def absolute_copy(self, element: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
        """``element`` with the links in it resolved as parse_page resolves them: itself
        when it holds none, else a copy."""
        linked, elsewhere = _links_in(element)
        if not elsewhere and not linked:
            return element
        copied = copy.deepcopy(element)
        if elsewhere:
            # links in CSS, <meta> refreshes, <object> and <param>: lxml's own reading
            for base in (self.href, self.url):
                if base:
                    copied.make_links_absolute(
                        base, resolve_base_href=False, handle_failures="ignore"
                    )
            return copied
        # elsewhere a link is the whole value of an attribute lxml.html.defs.link_attrs names
        elements = list(copied.iter(lxml.etree.Element))
        for position, _ in linked:
            found = elements[position]
            for name, value in found.items():
                if name in _LINK_ATTRIBUTES:
                    found.set(name, self.resolve(value))
        return copied


# what make_links_absolute looks at: the attributes lxml.html.defs.link_attrs names, styles,
# and the elements that hold links elsewhere
_LINK_ATTRIBUTES = frozenset(lxml.html.defs.link_attrs)
_LINKS_ELSEWHERE = frozenset({"object", "meta", "param", "style"})


def _links_in(
    element: lxml.html.HtmlElement,
) -> tuple[list[tuple[int, lxml.html.HtmlElement]], bool]:
    """The elements in ``element`` (itself included) with link attributes, with their
    positions in it, and whether it holds links elsewhere (styles, <object>, <meta>,
    <param>, <style>): then the elements are not all looked at."""
    linked: list[tuple[int, lxml.html.HtmlElement]] = []
    for position, found in enumerate(element.iter(lxml.etree.Element)):
        names = found.keys()
        if found.tag in _LINKS_ELSEWHERE or "style" in names:
            return linked, True
        if names and not _LINK_ATTRIBUTES.isdisjoint(names):
            linked.append((position, cast(lxml.html.HtmlElement, found)))
    return linked, False


def _join(base: str, link: str) -> str:
    """make_links_absolute's step for one link (it ignores links urljoin cannot read)."""
    link = link.strip()
    try:
        return urljoin(base, link)
    except ValueError:
        return link


_BASE_TAGS = lxml.etree.XPath(
    "//base[@href]|//x:base[@href]", namespaces={"x": "http://www.w3.org/1999/xhtml"}
)


def _parse(fetched: Fetched) -> tuple[lxml.html.HtmlElement, _Base, tuple[str, ...]]:
    """The page parsed, its links as written; the <base href> elements taken out (as
    make_links_absolute takes them out) and what its links are resolved against."""
    if fetched.content_type in _FEED_TYPES or _FEED_ROOT.match(fetched.content[:4096]):
        raise ExtractError(
            "the document is a feed, not an HTML page: remove 'html:' from the "
            "source to read it as a feed"
        )
    decoded = decode_html(fetched.content, fetched.headers)
    # lxml refuses str input that carries an XML encoding declaration
    text = _XML_DECL.sub("", decoded.text, count=1)
    if not text.strip():
        raise ExtractError("the page is empty")
    try:
        root = lxml.html.document_fromstring(text)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ExtractError(f"the page cannot be parsed as HTML: {exc}") from None
    # script and style text is never content, not even inside a title
    for element in list(root.iter("script", "style", "noscript", "template")):
        cast(lxml.html.HtmlElement, element).drop_tree()
    href = None
    for base in cast(list[lxml.html.HtmlElement], _BASE_TAGS(root)):
        href = base.get("href")
        base.drop_tree()
    return root, _Base(fetched.url, href or None), decoded.warnings


def extract_html(
    fetched: Fetched,
    rules: HtmlRules,
    date_order: detect.DateOrder | None = None,
    max_items: int = 1000,
    *,
    resolve_all_links: bool = False,
) -> Extraction:
    """The listing's items. Numeric dates with slashes are read in ``date_order`` (the
    source's), else in the page's language's order; else left to the normaliser. Only the
    first ``max_items`` are read.

    With an item selector, only the links the items use are made absolute (their link and
    the links in their summary), as parse_page would make them; detection reads every link
    of the page, so without one (or with ``resolve_all_links``) the whole page is resolved
    first. The items are the same either way."""
    base: _Base | None
    if rules.item and not resolve_all_links:
        root, base, warnings = _parse(fetched)
    else:
        (root, warnings), base = parse_page(fetched), None
    notes = list(warnings)
    order = date_order or detect.date_order_of(root)
    if rules.item:
        nodes = select(root, rules.item)
        if not nodes:
            raise ExtractError(
                f"the item selector {rules.item!r} matched nothing on the page "
                "(has the page layout changed?)"
            )
        wanted = repr(rules.item)
    else:
        detect.strip_furniture(root)
        nodes = detect.find_items(root)
        if not nodes:
            raise ExtractError("no listing found on the page; set html.item to a CSS selector")
        wanted = f"the detected {detect.describe(nodes)!r}"
        notes.append(
            f"items detected automatically: {detect.describe(nodes)} "
            f"({len(nodes)} found); set html.item to fix the choice"
        )
    if len(nodes) > max_items:  # the surplus of a broken or hostile page is not even read
        notes.append(f"{len(nodes)} items on one page; only the first {max_items} are read")
        nodes = nodes[:max_items]
    guesses = detect.read_items(nodes, order) if not rules.item else [None] * len(nodes)
    items: list[Item] = []
    for position, (node, guess) in enumerate(zip(nodes, guesses, strict=True), start=1):
        try:
            item = _item(node, rules, order, guess, base)
        except Exception as exc:  # one item that cannot be read never fails its siblings
            notes.append(
                f"item {position}: could not be read, skipped ({type(exc).__name__}: {exc})"
            )
            continue
        if item is None:
            notes.append(f"item {position}: no title found, skipped")
        else:
            items.append(item)
    if not items:
        raise ExtractError(f"{len(nodes)} item(s) matched {wanted} but none had a title")
    if not rules.item and not rules.title and not rules.title_remove:
        titles = detect.strip_common_prefix([item.title for item in items])
        items = [replace(item, title=title) for item, title in zip(items, titles, strict=True)]
    page_title = " ".join((root.findtext(".//title") or "").split())
    return Extraction(
        tuple(items), "html", tuple(notes), title=page_title or None, language=root.get("lang")
    )


def select(node: lxml.html.HtmlElement, selector: str) -> list[lxml.html.HtmlElement]:
    return cast(list[lxml.html.HtmlElement], compile_selector(selector)(node))


def text_of(root: lxml.html.HtmlElement, selector: str) -> str | None:
    """Text content of the first element ``selector`` matches, or None."""
    found = _first(root, selector)
    return _text(found) if found is not None else None


def date_text_of(node: lxml.html.HtmlElement, selector: str) -> str | None:
    """The date the first match shows: a <time>'s datetime attribute, else its text."""
    found = _first(node, selector)
    if found is None:
        return None
    machine = found.get("datetime") if found.tag == "time" else None
    return machine.strip() if machine and machine.strip() else _text(found)


def _item(
    node: lxml.html.HtmlElement,
    rules: HtmlRules,
    order: detect.DateOrder | None,
    guess: detect.Guess | None,
    base: _Base | None = None,
) -> Item | None:
    """One item: by the selectors given; detected items (``guess``) are read by the
    detection, whose reading any selector given still overrides. ``base``: what the links
    are resolved against, None when the page's links are absolute already."""
    if rules.link:
        anchor = _first(node, rules.link)
    else:
        anchor = guess.link if guess is not None else _first(node, "a[href]")
    link = _href(anchor, base) if anchor is not None else None
    title_node = _first(node, rules.title) if rules.title else None
    if rules.title:
        title = _text(title_node) if title_node is not None else ""
    elif guess is not None:
        title = guess.title if not rules.link else detect.guess_title(node, anchor)
    else:
        title = _text_or_empty(anchor)
    if rules.title_remove:
        title = re.sub(rules.title_remove, " ", title)
    if not title.strip():
        return None
    if rules.date:
        shown = date_text_of(node, rules.date)
        date_text = detect.read_date(shown, order) or shown
    else:
        date_text = guess.date_text if guess is not None else None
    summary = None
    if rules.summary:
        summary_node = _first(node, rules.summary)
        if summary_node is None:
            summary = None
        else:
            written = base.inner_html if base is not None else _inner_html
            summary = written(summary_node)
    elif guess is not None:
        exclude = [e for e in (anchor, title_node, guess.title_element) if e is not None]
        summary = detect.guess_summary(node, exclude)
    return Item(title=title, link=link, date_text=date_text, summary_html=summary)


def _text_or_empty(element: lxml.html.HtmlElement | None) -> str:
    return _text(element) if element is not None else ""


def _first(node: lxml.html.HtmlElement, selector: str) -> lxml.html.HtmlElement | None:
    simple = _simple_selector(selector)
    if simple is None:
        found = select(node, selector)
        return found[0] if found else None
    # what the selector's XPath finds first (descendant-or-self, in document order), found
    # by walking the tree instead of evaluating it
    tag, classes = simple
    for element in node.iter(tag):
        if not classes:
            return cast(lxml.html.HtmlElement, element)
        value = element.get("class")
        if value is not None:
            # XPath's normalize-space separates at space, tab, line feed and return only
            names = value.translate(_XPATH_SPACE).split(" ")
            if all(name in names for name in classes):
                return cast(lxml.html.HtmlElement, element)
    return None


# a type selector, with classes or without, in plain letters (no escapes): "h3", "a.more";
# cssselect makes them "descendant-or-self::a[@class and contains(concat(' ',
# normalize-space(@class), ' '), ' more ')]". lxml finds the elements of a type itself;
# classes alone (".news-date") are left to the XPath, which is no slower than looking at
# every element from Python.
_SIMPLE = re.compile(r"([A-Za-z][A-Za-z0-9]*)?((?:\.[A-Za-z_][A-Za-z0-9_-]*)*)")
_XPATH_SPACE = str.maketrans("\t\n\r", "   ")


@lru_cache(maxsize=512)
def _simple_selector(selector: str) -> tuple[str, tuple[str, ...]] | None:
    """(element name, classes) of a selector _first can find by walking, else None."""
    found = _SIMPLE.fullmatch(selector)
    if found is None or not found.group(1):
        return None
    return found.group(1), tuple(found.group(2).split(".")[1:])


def _href(element: lxml.html.HtmlElement, base: _Base | None = None) -> str | None:
    href = element.get("href")
    if href is None:  # the element's first link, else the link around it
        inner = _first(element, "a[href]")
        outer = next((a for a in element.iterancestors("a") if a.get("href")), None)
        href = next((a.get("href") for a in (inner, outer) if a is not None), None)
    elif element.tag == "object":  # lxml reads an <object>'s codebase and data, not its href
        base = None
    if href is not None and base is not None:
        href = base.resolve(href)
    href = (href or "").strip()
    if not href or href.startswith("#") or href.lower().startswith(("javascript:", "mailto:")):
        return None
    return href


def _text(element: lxml.html.HtmlElement) -> str:
    return str(element.text_content())


def inner_html(element: lxml.html.HtmlElement) -> str:
    """The element's content as HTML, without the element itself."""
    return _inner_html(element)


def _inner_html(element: lxml.html.HtmlElement) -> str:
    parts = [html.escape(element.text, quote=False)] if element.text else []
    parts.extend(lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in element)
    return "".join(parts)
