"""Automatic detection of the items of an HTML listing, for sources without an item selector.

A listing is a run of blocks of one structure that each carry a link and some text, often a
date. Blocks are grouped by their tag path and class names, leaving out what varies from
item to item (ids such as ``post-123`` or ``views-row-4``, alternating classes such as
``odd``/``even`` or ``row0``/``row1``), so that the items of one listing fall into one group
even when they are spread over several lists under one container. Every group is scored by
how many members it has, how much text they hold, how many show a date or a heading, how few
links each holds and how many lead to pages of their own; the best group wins. Page furniture
(navigation, header, footer, cookie banners, sidebars, tag clouds, pagination, embedded
social-media feeds, scripts, and whatever carries an ARIA landmark role for navigation or
search, or for the page's banner, footer or complementary column) is removed first.

One reader (:func:`read_item`) takes the title, the main link, the date and the summary out of
each detected item. Every step is linear in the size of the page.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import lxml.etree
import lxml.html
from cssselect import SelectorError
from lxml.cssselect import CSSSelector
from lxml.html import HtmlElement as Element

from ..normalise.dates import parse_date

__all__ = [
    "DateOrder",
    "Guess",
    "date_order_of",
    "describe",
    "detail_date_text",
    "find_items",
    "guess_date_text",
    "guess_link",
    "guess_summary",
    "guess_title",
    "read_date",
    "read_item",
    "read_items",
    "strip_common_prefix",
    "strip_furniture",
]

DateOrder = Literal["mdy", "dmy"]

_ALWAYS_FURNITURE = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "iframe",
    "svg",
    "button",
    "select",
)
# <header>, <footer> and <aside> are furniture at page level, but inside an article they
# hold its title and date
_PAGE_FURNITURE = ("header", "footer", "aside")
# ARIA landmark roles that mark the same furniture on any element: a <div role="navigation">
# is a <nav>; banner, contentinfo and complementary are the page's header, footer and aside
_ALWAYS_FURNITURE_ROLES = frozenset(("navigation", "search"))
_PAGE_FURNITURE_ROLES = frozenset(("banner", "contentinfo", "complementary"))
_CONTENT = ("article", "main", "section", "li")
_FURNITURE_TOKEN = re.compile(
    r"^(cookie|consent|gdpr|breadcrumb|navigation|navbar|skip|social|share|sharing|pagination"
    r"|pager|tagcloud|tag-cloud|most-?read|meistgelesen|popular|newsletter|carousel|slider"
    r"|slick|swiper|facebook|twitter|instagram|mastodon|tweet)"
    r"|^(menu|sidebar|site-header|site-footer|page-header|page-footer|main-nav|mainnav|widget"
    r"|tags|related|related-posts|subnav|sub-nav|submenu)$",
    re.IGNORECASE,
)
# elements that can hold furniture; an <a class="related"> is a link, not a sidebar
_CONTAINERS = frozenset(
    ("div", "section", "ul", "ol", "aside", "header", "footer", "nav", "dl", "table", "p")
)
_DATE_CLASS = re.compile(
    r"date|datum|time|zeit|published|posted|meta|stand|created|veroeffentlicht", re.IGNORECASE
)
_TITLE_CLASS = re.compile(r"(?:^|[^a-z])(title|headline|heading|titel)(?:$|[^a-z])")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# classes that differ between items of one listing: ids, positions, zebra stripes, states
_VOLATILE_CLASS = re.compile(
    r"\d|^(odd|even|first|last|alt|alternate|active|current|selected|open|closed|hover|"
    r"clearfix|new|featured|sticky|top|is-.*|has-.*|.*-(odd|even|first|last|active))$",
    re.IGNORECASE,
)
_DOCUMENT = re.compile(r"\.(pdf|docx?|odt|xlsx?|ods|pptx?|rtf)(\?|#|$)", re.IGNORECASE)
_NOT_A_PAGE = re.compile(
    r"\.(jpe?g|png|gif|webp|svg|ico|zip|gz|mp3|mp4|m4a|ogg|webm)(\?|#|$)", re.IGNORECASE
)
_SHORT = 120  # a date line is short; a date inside a long teaser is an event date
_DATE_LINE = 80  # a paragraph this short with a date is the date line, not the summary
_DATE_LABEL = re.compile(
    r"(posted|published|veröffentlicht|erstellt|aktualisiert|updated|stand|datum|date|vom|am"
    r"|on|\|)\s*:?\s*$",
    re.IGNORECASE,
)
_SLASH_DATE = re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])")
_DMY_ENGLISH = ("en-gb", "en-au", "en-nz", "en-ie", "en-in", "en-za", "en-sg")
_SAMPLE = 60  # members of a group examined in detail; the rest are like them


def strip_furniture(root: Element) -> None:
    """Remove what is never part of a listing's items."""
    doomed = list(root.iter(*_ALWAYS_FURNITURE))
    doomed += [el for el in root.iter(*_PAGE_FURNITURE) if not _has(el.iterancestors(*_CONTENT))]
    for el in root.iter():
        role = el.get("role") if isinstance(el.tag, str) else None
        at_page_level = role in _PAGE_FURNITURE_ROLES and not _has(el.iterancestors(*_CONTENT))
        if (role in _ALWAYS_FURNITURE_ROLES or at_page_level) and not _holds_main(el):
            doomed.append(el)
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag not in _CONTAINERS:
            continue
        tokens = f"{el.get('id', '')} {el.get('class', '')}".split()
        if any(_FURNITURE_TOKEN.search(token) for token in tokens) and not _holds_main(el):
            doomed.append(el)
    for el in doomed:
        if el.getparent() is not None:
            el.drop_tree()


def _has(elements: Iterable[Element]) -> bool:
    return next(iter(elements), None) is not None


def _holds_main(el: Element) -> bool:
    return el.find(".//main") is not None or el.get("id") in ("content", "main")


# -- grouping -------------------------------------------------------------------------------


def _kind(el: Element) -> str:
    """Tag and first stable class: what an element is, leaving out what varies from item to
    item (later classes often mark a state, such as "topnews")."""
    for cls in (el.get("class") or "").split():
        if not _VOLATILE_CLASS.search(cls):
            return f"{el.tag}.{cls}"
    return str(el.tag)


def _shape(el: Element) -> tuple[str, ...]:
    return tuple(_kind(child) for child in el if isinstance(child.tag, str))


def _groups(root: Element) -> Iterator[list[Element]]:
    """Elements of one kind under the same kinds of parents, close to each other."""
    kinds: dict[Element, str] = {}
    groups: defaultdict[tuple[str, int], list[Element]] = defaultdict(list)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        kinds[el] = _kind(el)
        parent = el.getparent()
        path = [kinds[el]]
        anchor = parent
        for _ in range(3):
            if anchor is None:
                break
            path.append(kinds.get(anchor, ""))
            anchor = anchor.getparent()
        # members share their great-grandparent: the items of a listing split into several
        # lists under one container stay together, unrelated lists elsewhere do not
        key = ("/".join(path), id(anchor) if anchor is not None else 0)
        groups[key].append(el)
    for members in groups.values():
        if len(members) >= 2:
            yield members


def find_items(root: Element) -> list[Element]:
    """The blocks that most look like the items of a listing; empty if none do.

    A definition list's items are a <dt> and the <dd>s after it; they are returned joined
    in one <div> each.
    """
    best: list[Element] = []
    best_score = 0.0
    for members in _groups(root):
        score = _score(members)
        if score > best_score:
            best, best_score = members, score
    if best and all(m.tag == "dd" and _definition_term(m) is not None for m in best):
        terms = {id(_definition_term(m)): _definition_term(m) for m in best}
        best = [term for term in terms.values() if term is not None]
    if best and all(m.tag == "dt" for m in best):
        return [_with_definitions(dt) for dt in best]
    return [m for m in _whole_items(best) if not _header_row(m)]


def _header_row(el: Element) -> bool:
    """A table's row of column headings, not an item."""
    cells = [c for c in el if isinstance(c.tag, str)]
    return (
        el.tag == "tr" and bool(cells) and all(c.tag == "th" for c in cells) and not _page_links(el)
    )


def _definition_term(dd: Element) -> Element | None:
    sibling = dd.getprevious()
    while sibling is not None and sibling.tag == "dd":
        sibling = sibling.getprevious()
    return sibling if sibling is not None and sibling.tag == "dt" else None


def _whole_items(members: list[Element]) -> list[Element]:
    """The parents when each holds two or three members that play different parts (a card's
    title block and its tag block), else the members."""
    parents: dict[int, tuple[Element, list[Element]]] = {}
    for member in members:
        parent = member.getparent()
        if parent is None:
            return members
        parents.setdefault(id(parent), (parent, []))[1].append(member)
    counts = {len(parts) for _, parts in parents.values()}
    if len(parents) < 2 or len(counts) != 1 or counts.pop() not in (2, 3):
        return members
    if any(len({_shape(part) for part in parts}) == 1 for _, parts in parents.values()):
        return members  # rows of a grid, each with a few items alike
    return [parent for parent, _ in parents.values()]


def _with_definitions(dt: Element) -> Element:
    joined = lxml.html.Element("div")
    joined.append(copy.deepcopy(dt))
    sibling = dt.getnext()
    while sibling is not None and sibling.tag == "dd":
        joined.append(copy.deepcopy(sibling))
        sibling = sibling.getnext()
    for el in joined:
        el.tail = None
    return joined


def _score(members: Sequence[Element]) -> float:
    sample = members[:_SAMPLE]
    texts = [_flat(m if m.tag != "dt" else _with_definitions(m)) for m in sample]
    filled = [(m, t) for m, t in zip(sample, texts, strict=True) if t]  # spacer rows aside
    linked = [(m, t) for m, t in filled if _page_links(m)]
    if len(linked) < 2 or len(linked) * 2 < len(filled):  # some items may have no link
        return 0.0
    mean = sum(min(len(t), 300) for _, t in linked) / len(linked)
    hrefs = [{a.get("href") for a in _page_links(m)} for m, _ in linked]
    documents = sum(1 for links in hrefs if any(_DOCUMENT.search(h or "") for h in links))
    if mean < 20 and documents * 2 < len(linked):  # bare links: menus, tag clouds, pagers
        return 0.0
    # many links in a block mean it holds several items, unless it shows one date: an item
    # whose text has lists of links of its own (release notes, a programme)
    single = sum(1 for m, _ in linked if _dates_shown(m) == 1) / len(linked)
    per_item = sum(len(links) for links in hrefs) / len(linked) if single < 0.8 else 1.0
    main = [guess_link(m) for m, _ in linked]
    # links that differ only in their fragment lead to one page (a player, an accordion)
    pages = {(a.get("href") or "").split("#")[0] for a in main if a is not None}
    distinct = len(pages) / len(linked)
    dated = sum(1 for m, _ in linked if guess_date_text(m) is not None) / len(linked)
    titled = sum(1 for m, _ in linked if _title_element(m) is not None) / len(linked)
    shapes: defaultdict[tuple[str, ...], int] = defaultdict(int)
    for m, _ in linked:
        shapes[_shape(m)] += 1
    alike = max(shapes.values()) / len(linked)  # items of a listing are built alike
    count = len(linked) * len(members) / len(sample)
    # the items of a listing lead to pages of their own; blocks that all lead to one page
    # (a consent notice repeated in every video box, a feed's profile link) are not items
    return (
        count
        * mean
        * alike
        * (1.0 + dated)
        * (1.0 + 0.5 * titled)
        * distinct**2
        / max(1.0, per_item - 2.0)
    )


def _dates_shown(item: Element, most: int = 2) -> int:
    """How many short lines of the item hold a date (counting stops at ``most``)."""
    count = 0
    for text, _ in _segments(item):
        if read_date(text) is not None:
            count += 1
            if count >= most:
                break
    return count


def _flat(el: Element) -> str:
    return " ".join(el.text_content().split())


def _page_links(item: Element) -> list[Element]:
    return [a for a in item.iter("a") if _is_page_link(a.get("href"))]


def _is_page_link(href: str | None) -> bool:
    """A link to a page or a document; not to an image, a media file or a fragment."""
    if not href:
        return False
    href = href.strip().lower()
    return href.startswith(("http://", "https://", "/")) and not _NOT_A_PAGE.search(href)


# -- reading one item -----------------------------------------------------------------------


@dataclass(frozen=True)
class Guess:
    """What detection reads from one item."""

    title: str
    title_element: Element | None
    link: Element | None
    date_text: str | None
    summary: str | None


def read_item(
    item: Element, order: DateOrder | None = None, anchor: Element | None = None
) -> Guess:
    """Title, main link (``anchor``, if already chosen), date and summary of one item."""
    anchor = anchor if anchor is not None else guess_link(item)
    title_element = _title_element(item)
    title = _clean(title_element) if title_element is not None else guess_title(item, anchor)
    date_text = guess_date_text(item, order)
    exclude = [e for e in (anchor, title_element) if e is not None]
    return Guess(title, title_element, anchor, date_text, guess_summary(item, exclude))


def read_items(items: Sequence[Element], order: DateOrder | None = None) -> list[Guess]:
    """Every item read, the main link in the same place in each: where most items have
    their main link (a path of element kinds), an item that has a link there too takes it
    rather than one elsewhere (a "Latest release" label, a badge)."""
    links = [guess_link(item) for item in items]
    paths = [_path(item, link) for item, link in zip(items, links, strict=True)]
    counts: defaultdict[tuple[str, ...], int] = defaultdict(int)
    for path in paths:
        if path is not None:
            counts[path] += 1
    common = max(counts, key=lambda p: counts[p]) if counts else None
    if common is not None and len(items) >= 3 and counts[common] * 5 >= len(items) * 3:
        for index, (item, path) in enumerate(zip(items, paths, strict=True)):
            if path != common:
                there = [a for a in _page_links(item) if _path(item, a) == common]
                if there:
                    links[index] = there[0]
    return [read_item(item, order, link) for item, link in zip(items, links, strict=True)]


def _path(item: Element, el: Element | None) -> tuple[str, ...] | None:
    if el is None:
        return None
    kinds = [_kind(el)]
    for ancestor in el.iterancestors():
        if ancestor is item:
            return tuple(reversed(kinds))
        kinds.append(_kind(ancestor))
    return None


def guess_link(item: Element) -> Element | None:
    """The item's link to its detail page (or document)."""
    if len(item) and item[0].tag == "dt" and _page_links(item[0]):
        item = item[0]  # a definition list's term carries the links, its definition the text
    anchors = _page_links(item)
    if not anchors:
        return None
    title_element = _title_element(item)
    if title_element is not None:
        inner = [a for a in anchors if _contains(title_element, a) or _contains(a, title_element)]
        if inner:
            return inner[0]
    head = _body_head(item, [h for h in item.iter(*_HEADINGS) if _text_unless_date(h)])
    if head is not None:  # the title link is in the head, not among the body's links
        anchors = [a for a in anchors if a in head] or anchors
    counts: defaultdict[str, int] = defaultdict(int)
    for anchor in anchors:
        counts[anchor.get("href", "")] += 1
    repeated = [a for a in anchors if counts[a.get("href", "")] > 1]
    if repeated:  # the title and "read more" usually point to the same page
        return max(repeated, key=lambda a: len(_text_unless_date(a)))
    return max(anchors, key=lambda a: len(_text_unless_date(a)))


def _contains(outer: Element, inner: Element) -> bool:
    return outer is inner or any(a is outer for a in inner.iterancestors())


def _title_element(item: Element) -> Element | None:
    """The most prominent heading, else an element named as a title; never a date."""
    headings = [h for h in item.iter(*_HEADINGS) if _text_unless_date(h)]
    linked = [h for h in headings if _linked(h)]
    if linked:
        return min(linked, key=lambda h: str(h.tag))  # h2 before h3; first of a level
    head = _body_head(item, headings)
    if head is not None:  # a link and a date open the item: later headings are its body's
        headings = [h for h in headings if h in head]
    if headings:
        return min(headings, key=lambda h: str(h.tag))
    for el in item.iter() if head is None else [e for e in item.iter() if e in head]:
        if not isinstance(el.tag, str) or el is item:
            continue
        named = _TITLE_CLASS.search((el.get("class") or "").lower()) or el.get("itemprop") in (
            "headline",
            "name",
        )
        if named and "subtitle" not in (el.get("class") or "") and _text_unless_date(el):
            return el
    return None


def _linked(heading: Element) -> bool:
    """A heading that is a link or holds one."""
    if any(_is_page_link(a.get("href")) for a in heading.iter("a")):
        return True
    return any(_is_page_link(a.get("href")) for a in heading.iterancestors("a"))


def _body_head(item: Element, headings: Sequence[Element]) -> set[Element] | None:
    """The item's head when it has headings after it (see :func:`_head`), else None."""
    if not headings:
        return None
    head = _head(item)
    return head if head is not None and any(h not in head for h in headings) else None


def _head(item: Element) -> set[Element] | None:
    """The elements before the item's first date, when a text link comes before that date:
    the head of an item whose body (release notes, a whole post) has headings of its own.
    None when the item does not open so."""
    seen: set[Element] = set()
    link = False
    for el in item.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "a" and _is_page_link(el.get("href")) and _text_unless_date(el):
            link = True
        text = " ".join((el.text or "").split())
        if link and text and len(text) <= _SHORT and read_date(text) is not None:
            return seen
        seen.add(el)
    return None


def _text_unless_date(el: Element) -> str:
    """The element's text, or "" when it is no more than a date."""
    text = _flat(el)
    if not text or (len(text) < 40 and read_date(text, "mdy") is not None and _mostly_date(text)):
        return ""
    return text


def _is_date(text: str) -> bool:
    return read_date(text, "mdy") is not None and _mostly_date(text)


_DATE_WORD = re.compile(
    r"(jan|feb|m[äa]r|mrz|apr|ma[iy]|jun|jul|aug|sept?|o[ck]t|nov|de[cz])[a-zä]*"
    r"|(mon|tue|wed|thu|fri|sat|sun)[a-z]*|(mon|diens|mitt|donners|frei|sams|sonn)tag|mo|di|mi"
    r"|do|fr|sa|so|published|posted|updated|on|at|am|pm|um|uhr|vom|stand|datum|date"
    r"|veröffentlicht|aktualisiert|erstellt|st|nd|rd|th|h|z|utc|gmt|mez|mesz|cet|cest",
    re.IGNORECASE,
)


def _mostly_date(text: str) -> bool:
    """No words but month and day names and labels: "Published: 2/10/2026", "11. Februar
    2019", "Jun 21, 2022"; not "watchOS 5.3.10" or "iOS 16.7.15"."""
    words = re.findall(r"[^\W\d_]+", text)
    return all(_DATE_WORD.fullmatch(word) for word in words)


def guess_title(item: Element, anchor: Element | None) -> str:
    """The title when no heading or title element names it: a bold text, else a link text."""
    title_element = _title_element(item)
    if title_element is not None:
        return _clean(title_element)
    head = _body_head(item, [h for h in item.iter(*_HEADINGS) if _text_unless_date(h)])
    for strong in item.iter("strong", "b"):
        if head is not None and strong not in head:
            continue
        text = _text_unless_date(strong)
        if len(text) > 10:
            return text.replace("\xad", "")
    if anchor is None:  # an item shown without a link: its first line of text
        return next((text for text, _ in _segments(item) if not _is_date(text)), "")
    same = [a for a in item.iter("a") if a.get("href") == anchor.get("href")]
    texts = [_text_unless_date(a) for a in same] or [_flat(anchor)]
    return max(texts, key=len).replace("\xad", "")


def _clean(el: Element) -> str:
    return _flat(el).replace("\xad", "")


def date_order_of(root: Element) -> DateOrder | None:
    """How the page writes numeric dates with slashes: by its language; None: not read."""
    lang = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or ""
    lang = lang.strip().lower()
    if lang == "en" or (lang.startswith("en-") and lang not in _DMY_ENGLISH):
        return "mdy"
    if lang.startswith("en-"):
        return "dmy"
    return None


def read_date(text: str | None, order: DateOrder | None = None) -> str | None:
    """The text if it holds a date; a numeric date with slashes as ISO when ``order`` says
    how to read it; None when there is no date."""
    if not text:
        return None
    found = parse_date(text)
    slash = _SLASH_DATE.search(text) if order else None
    if slash is not None and (found is None or parse_date(text[: slash.start()]) is None):
        first, second, year = (int(g) for g in slash.groups())
        month, day = (first, second) if order == "mdy" else (second, first)
        if year < 100:
            year += 2000 if year < 70 else 1900
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    return text if found is not None else None


def guess_date_text(item: Element, order: DateOrder | None = None) -> str | None:
    """A date shown for the item: a <time>, an element named like a date, else a short line
    with a date (first one that starts with the date or follows a label such as "Posted on",
    "Veröffentlicht am", "Stand:"; else the first short one). Numeric dates with slashes
    are read in ``order``, by default the page's (see :func:`date_order_of`)."""
    if order is None:
        order = date_order_of(item.getroottree().getroot())
    for time_el in item.iter("time"):
        for value in (time_el.get("datetime"), _flat(time_el)):
            found = read_date(value, order)
            if found is not None:
                return found
    for el in item.iter():
        if isinstance(el.tag, str) and _DATE_CLASS.search(el.get("class", "")):
            text = _flat(el)
            if len(text) <= _SHORT:
                found = read_date(text, order)
                if found is not None:
                    return found
    fallback = None
    for text, before in _segments(item):
        found = read_date(text, order)
        if found is None:
            continue
        if _starts_with_date(text, order) or _DATE_LABEL.search(before):
            return found
        fallback = fallback or found
    return fallback


def _segments(item: Element) -> Iterator[tuple[str, str]]:
    """Short runs of text in the item, each with the text just before it."""
    before = ""
    for el in item.iter():
        if not isinstance(el.tag, str):
            continue
        for piece in (el.text, el.tail if el is not item else None):
            text = " ".join((piece or "").split())
            if not text:
                continue
            if len(text) <= _SHORT:
                yield text, before
            before = text[-40:]


def _starts_with_date(text: str, order: DateOrder | None) -> bool:
    head = text[:25]
    return read_date(head, order) is not None and _mostly_date(head)


def guess_summary(item: Element, exclude: Iterable[Element]) -> str | None:
    """The item's paragraphs of text, leaving out its title, date line and link."""
    skipped = set(exclude)
    parts = []
    for paragraph in item.iter("p"):
        if paragraph in skipped or any(a in skipped for a in paragraph.iter("a")):
            continue
        text = _flat(paragraph)
        if len(text) < 3 or (len(text) < _DATE_LINE and read_date(text, "mdy") is not None):
            continue
        parts.append(lxml.html.tostring(paragraph, encoding="unicode", with_tail=False))
    return "".join(parts) or None


def strip_common_prefix(titles: Sequence[str]) -> list[str]:
    """Remove a label all titles share, such as "mehr zur Meldung:".

    Linear in the length of the titles: the common prefix of all of them is that of the
    smallest and the largest, found a block at a time.
    """
    if len(titles) < 2:
        return list(titles)
    flat = [" ".join(t.split()) for t in titles]
    low, high = min(flat), max(flat)
    length = _common_prefix_length(low, high)
    cut = low.rfind(":", 0, length)
    if cut < 3:
        return list(titles)
    return [t[cut + 1 :] for t in flat]


def _common_prefix_length(a: str, b: str, block: int = 4096) -> int:
    end = min(len(a), len(b))
    start = 0
    while start < end and a[start : start + block] == b[start : start + block]:
        start += block
    stop = min(start + block, end)
    while start < stop and a[start] == b[start]:
        start += 1
    return start


# -- naming what was found -------------------------------------------------------------------


def describe(items: Sequence[Element]) -> str:
    """A CSS selector that names the detected items, to put into sources.yaml."""
    first = items[0]
    if first.getparent() is None and len(first) and first[0].tag == "dt":  # joined <dt>/<dd>
        return "dl > dt"
    own = _css(first)
    root = first.getroottree().getroot()
    wanted = {id(item) for item in items}
    chain = [own]
    for ancestor in list(first.iterancestors())[:4]:
        chain.insert(0, _css(ancestor, with_id=True))
        selector = " > ".join(chain)
        if _matches(root, selector) == wanted:
            return selector
        if ancestor.get("id"):
            break
    for ancestor in first.iterancestors():  # items spread over several lists: a descendant
        if all(_contains(ancestor, item) for item in items[:_SAMPLE]):
            selector = f"{_css(ancestor, with_id=True)} {own}"
            if _matches(root, selector) == wanted:
                return selector
            break
    return " > ".join(chain[-2:])


_CSS_NAME = re.compile(r"-?[A-Za-z_][\w-]*")


def _css(el: Element, with_id: bool = False) -> str:
    """Tag, stable id (not a generated one) and up to two stable classes."""
    selector = str(el.tag)
    ident = el.get("id") or ""
    if with_id and _CSS_NAME.fullmatch(ident) and not re.search(r"\d{3}", ident):
        selector += f"#{ident}"
    classes = [c for c in (el.get("class") or "").split() if not _VOLATILE_CLASS.search(c)]
    return selector + "".join(f".{c}" for c in classes[:2] if _CSS_NAME.fullmatch(c))


def _matches(root: Element, selector: str) -> set[int]:
    try:
        found = cast(list[Element], CSSSelector(selector)(root))
    except (SelectorError, lxml.etree.XPathError):  # a name cssselect cannot express
        return set()
    return {id(el) for el in found}


def detail_date_text(root: Element) -> str | None:
    """The start of a detail page's main text, where its date line stands."""
    strip_furniture(root)
    for path in (".//main", ".//*[@id='content']", ".//article", ".//body"):
        found = root.find(path)
        if found is not None:
            return " ".join(found.text_content().split())[:500]
    return None
