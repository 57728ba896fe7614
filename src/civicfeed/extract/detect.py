"""Automatic detection of the items of an HTML listing, for sources without an item selector.

A listing is a run of sibling elements of one kind (same tag and class) that each carry a
link and some text, often a date. Every group of such siblings on the page is scored by how
many members it has, how much text they hold and how many show a date; the best group wins.
Page furniture (navigation, header, footer, cookie banners, scripts) is removed first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import lxml.html
from lxml.html import HtmlElement as Element

from ..normalise.dates import parse_date

__all__ = [
    "describe",
    "find_items",
    "guess_date_text",
    "guess_link",
    "guess_summary",
    "guess_title",
    "strip_common_prefix",
    "strip_furniture",
]


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
_CONTENT = ("article", "main", "section", "li")
_FURNITURE_TOKEN = re.compile(
    r"^(cookie|consent|gdpr|breadcrumb|navigation|navbar|skip|social|share|pagination|pager)"
    r"|^(menu|sidebar|site-header|site-footer|page-header|page-footer|main-nav|mainnav)$",
    re.IGNORECASE,
)
_DATE_CLASS = re.compile(r"date|datum|time|zeit|published|meta", re.IGNORECASE)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_DATE_NEAR_START = 80  # a date line precedes the teaser; later dates are event dates


def strip_furniture(root: Element) -> None:
    """Remove what is never part of a listing's items."""
    doomed = list(root.iter(*_ALWAYS_FURNITURE))
    doomed += [el for el in root.iter(*_PAGE_FURNITURE) if not _has(el.iterancestors(*_CONTENT))]
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "main"):
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


def find_items(root: Element) -> list[Element]:
    """The siblings that most look like the items of a listing; empty if none do."""
    best: list[Element] = []
    best_score = 0.0
    for parent in root.iter():
        if not isinstance(parent.tag, str) or len(parent) < 2:
            continue
        groups: defaultdict[tuple[str, str], list[Element]] = defaultdict(list)
        for child in parent:
            if isinstance(child.tag, str):
                # the first class names the kind; later ones often mark a state ("topnews")
                kind = (child.get("class") or "").split()[:1]
                groups[(child.tag, kind[0] if kind else "")].append(child)
        for members in groups.values():
            score = _score(members)
            if score > best_score:
                best, best_score = members, score
    return best


def _score(members: Sequence[Element]) -> float:
    linked = [m for m in members if guess_link(m) is not None]
    if len(linked) < 2 or len(linked) * 3 < len(members) * 2:
        return 0.0
    lengths = [len(" ".join(m.text_content().split())) for m in linked]
    mean = sum(lengths) / len(lengths)
    if mean < 20:  # lists of bare links: menus, tag clouds, pagination
        return 0.0
    dated = sum(1 for m in linked if guess_date_text(m) is not None)
    return len(linked) * min(mean, 300.0) * (1.0 + dated / len(linked))


def guess_link(item: Element) -> Element | None:
    """The item's link to its detail page."""
    anchors = [a for a in item.iter("a") if _is_page_link(a.get("href"))]
    if not anchors:
        return None
    for anchor in anchors:
        if _has(anchor.iterancestors(*_HEADINGS)) or _has(anchor.iterdescendants(*_HEADINGS)):
            return anchor
    counts: defaultdict[str, int] = defaultdict(int)
    for anchor in anchors:
        counts[anchor.get("href", "")] += 1
    repeated = [a for a in anchors if counts[a.get("href", "")] > 1]
    if repeated:  # the title and "read more" usually point to the same page
        return repeated[0]
    return max(anchors, key=lambda a: len(a.text_content().strip()))


def _is_page_link(href: str | None) -> bool:
    if not href:
        return False
    href = href.strip().lower()
    return href.startswith(("http://", "https://", "/")) and not href.endswith(
        (".jpg", ".jpeg", ".png", ".gif", ".pdf", ".doc", ".docx", ".zip")
    )


def guess_title(item: Element, anchor: Element | None) -> str:
    for heading in item.iter(*_HEADINGS):
        text = heading.text_content()
        if text.strip():
            return str(text)
    for strong in item.iter("strong", "b"):
        text = strong.text_content()
        if len(text.strip()) > 10:
            return str(text)
    return str(anchor.text_content()) if anchor is not None else ""


def guess_date_text(item: Element) -> str | None:
    """A date shown for the item: a <time>, an element named like a date, or one at the start."""
    for time_el in item.iter("time"):
        value = time_el.get("datetime") or time_el.text_content()
        if parse_date(value) is not None:
            return str(value)
    for el in item.iter():
        if isinstance(el.tag, str) and _DATE_CLASS.search(el.get("class", "")):
            text = el.text_content()
            if parse_date(text) is not None:
                return str(text)
    head = " ".join(item.text_content().split())[:_DATE_NEAR_START]
    return head if parse_date(head) is not None else None


def guess_summary(item: Element, exclude: Iterable[Element]) -> str | None:
    """The item's paragraphs of text, leaving out its title, date line and link."""
    skipped = set(exclude)
    parts = []
    for paragraph in item.iter("p"):
        if paragraph in skipped or any(a in skipped for a in paragraph.iter("a")):
            continue
        text = " ".join(paragraph.text_content().split())
        if len(text) < 3 or (len(text) < _DATE_NEAR_START and parse_date(text) is not None):
            continue
        parts.append(lxml.html.tostring(paragraph, encoding="unicode", with_tail=False))
    return "".join(parts) or None


def strip_common_prefix(titles: Sequence[str]) -> list[str]:
    """Remove a label all titles share, such as "mehr zur Meldung:"."""
    if len(titles) < 2:
        return list(titles)
    flat = [" ".join(t.split()) for t in titles]
    prefix = flat[0]
    for title in flat[1:]:
        while not title.startswith(prefix):
            prefix = prefix[:-1]
    cut = prefix.rfind(":")
    if cut < 3:
        return list(titles)
    return [" ".join(t.split())[cut + 1 :] for t in titles]


def describe(items: Sequence[Element]) -> str:
    """A CSS selector that names the detected items, to put into sources.yaml."""
    first = items[0]
    classes = ".".join(first.get("class", "").split()[:1])
    own = str(first.tag) + (f".{classes}" if classes else "")
    parent = first.getparent()
    if parent is None:
        return own
    parent_classes = ".".join(parent.get("class", "").split())
    parent_id = parent.get("id")
    where = (
        parent.tag
        + (f"#{parent_id}" if parent_id else "")
        + (f".{parent_classes}" if parent_classes else "")
    )
    return f"{where} > {own}"


def detail_date_text(root: Element) -> str | None:
    """The start of a detail page's main text, where its date line stands."""
    strip_furniture(root)
    for path in (".//main", ".//*[@id='content']", ".//article", ".//body"):
        found = root.find(path)
        if found is not None:
            return " ".join(found.text_content().split())[:500]
    return None
