"""Pinning detection's choice: CSS selectors that read a page as automatic detection does.

Detection can change (a new version, a relaunched page); selectors written into sources.yaml
do not. For every field (title, link, date, summary) the element detection took in each item
is named by the simplest selector, relative to the item, that finds that same element in
every item. The selectors are then checked as a whole: a listing read with them must give
the same titles, links and dates as detection gave. A field that no selector reproduces is
left out, and the result says so.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, date
from typing import TYPE_CHECKING

import lxml.html
from lxml.html import HtmlElement as Element

from ..errors import ExtractError
from ..models import Explained, Extraction, Fetched, Pinned
from ..normalise.dates import parse_date
from . import detect
from .html import extract_html, parse_page, select

__all__ = ["explain", "pin_listing"]

if TYPE_CHECKING:
    from ..config import HtmlRules

_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# class names that mark one item or a state, never a kind of element
_VOLATILE_CLASS = re.compile(r"\d|^(odd|even|first|last|active|current|selected)$", re.I)


def pin_listing(
    fetched: Fetched,
    date_order: detect.DateOrder | None = None,
    root: lxml.html.HtmlElement | None = None,
) -> Pinned | None:
    """Selectors for the listing detection finds on the page; None if it finds none.
    ``root``: the page as parse_page gave it, when the caller has parsed it (it is left as
    it is)."""
    if root is None:
        root, _ = parse_page(fetched)
    order = date_order or detect.date_order_of(root)
    stripped = copy.deepcopy(root)
    detect.strip_furniture(stripped)
    nodes = detect.find_items(stripped)
    if not nodes:
        return None
    try:
        auto = extract_html(fetched, _rules({}), date_order)
    except ExtractError:
        return None
    guesses = [detect.read_item(node, order) for node in nodes]
    raw_titles = [_flat(guess.title) for guess in guesses]
    notes: list[str] = []
    fields: dict[str, str] = {}
    prefix = _shared_prefix(raw_titles, [_flat(item.title) for item in auto.items])

    title = _name(
        nodes,
        [
            guess.title_element
            if guess.title_element is not None
            else _title_element(node, raw_titles[i])
            for i, (node, guess) in enumerate(zip(nodes, guesses, strict=True))
        ],
        lambda el, i: _flat(el.text_content()) == raw_titles[i] if el is not None else False,
    )
    if title:
        fields["title"] = title
    links = [guess.link for guess in guesses]
    hrefs = [link.get("href") if link is not None else None for link in links]
    link = _name(
        nodes, links, lambda el, i: (el.get("href") if el is not None else None) == hrefs[i]
    )
    if link:
        fields["link"] = link
    days = [_day(guess.date_text, order) for guess in guesses]
    if any(days):
        date = _name(
            nodes,
            [_date_element(node, days[i], order) for i, node in enumerate(nodes)],
            lambda el, i: (_day(_shown(el), order) if el is not None else None) == days[i],
        )
        if date:
            fields["date"] = date
        else:
            notes.append("no selector finds the dates detection read")
    summaries = [_summary_text(guess.summary) for guess in guesses]
    if any(summaries):
        summary = _name(
            nodes,
            [_summary_element(node, summaries[i]) for i, node in enumerate(nodes)],
            lambda el, i: (_dense(el.text_content()) if el is not None else None) == summaries[i],
        )
        if summary:
            fields["summary"] = summary
        else:
            notes.append("no selector finds the summaries detection read; none are pinned")
    if prefix:
        fields["title_remove"] = "^\\s*" + "\\s+".join(re.escape(w) for w in prefix.split())

    wanted = _signature(auto, order)
    for item in _item_selectors(nodes):
        chosen = {"item": item, **fields}
        try:
            pinned = extract_html(fetched, _rules(chosen), date_order)
        except ExtractError:
            continue
        if _signature(pinned, order) == wanted:
            return Pinned(_ordered(chosen), len(nodes), True, tuple(notes))
    notes.append("the selectors do not read exactly what detection reads")
    chosen = {"item": detect.describe(nodes), **fields}
    return Pinned(_ordered(chosen), len(nodes), False, tuple(notes))


def explain(fetched: Fetched, rules: HtmlRules, pinned: Pinned | None = None) -> Explained:
    """The configured selectors, with detection's choice where none is configured.
    ``pinned``: pin_listing's result for this page, when the caller has it (the page is not
    read again for it)."""
    configured = tuple(
        (key, str(value)) for key, value in asdict(rules).items() if value is not None
    )
    try:
        if rules.item:
            if pinned is not None and pinned.exact and pinned.as_dict()["item"] == rules.item:
                return Explained(configured, detected=False)  # pinning found it on the page
            root, _ = parse_page(fetched)
            if select(root, rules.item):
                return Explained(configured, detected=False)
            return Explained(configured, detected=False, suggestion=pin_listing(fetched, root=root))
        if pinned is None:
            pinned = pin_listing(fetched)
    except ExtractError:
        return Explained(configured, detected=not rules.item)
    if pinned is None:
        return Explained(configured, detected=True)
    own = dict(configured)
    chosen = tuple((k, v) for k, v in pinned.selectors if k not in own) + configured
    return Explained(chosen, detected=True, notes=pinned.notes)


def _rules(selectors: dict[str, str]) -> HtmlRules:
    from ..config import HtmlRules  # the config record is only the carrier of the selectors

    return HtmlRules(**selectors)


def _ordered(chosen: dict[str, str]) -> tuple[tuple[str, str], ...]:
    order = ("item", "title", "date", "link", "summary", "title_remove")
    return tuple((key, chosen[key]) for key in order if key in chosen)


def _signature(
    extraction: Extraction, order: detect.DateOrder | None
) -> list[tuple[str, str | None, date | None]]:
    return [(_flat(i.title), i.link, _day(i.date_text, order)) for i in extraction.items]


def _flat(text: str | None) -> str:
    return " ".join((text or "").replace("\xad", "").split())


def _dense(text: str) -> str:
    """Text without any white space: paragraphs joined with or without a line break match."""
    return "".join(text.split())


def _day(text: str | None, order: detect.DateOrder | None) -> date | None:
    """The calendar day a text shows, read as the listing reads it."""
    shown = detect.read_date(text, order)
    when = parse_date(shown, UTC) if shown else None
    return when.date() if when else None


def _shared_prefix(raw: Sequence[str], final: Sequence[str]) -> str:
    """The label detection removed from every title ("mehr zur Meldung:"), if any."""
    if not raw or raw == list(final):
        return ""
    first, kept = raw[0], final[0]
    return first[: len(first) - len(kept)].strip() if first.endswith(kept) else ""


def _title_element(node: Element, text: str) -> Element | None:
    for el in node.iter(*_HEADINGS, "strong", "b", "a"):
        if _flat(el.text_content()) == text:
            return el
    return None


def _date_element(
    node: Element, want: date | None, order: detect.DateOrder | None
) -> Element | None:
    """The innermost element that holds the item's date; the item itself when the date is
    its own text (a selector matches the element it is applied to, too)."""
    if want is None:
        return None
    best = None
    for el in node.iter():
        if isinstance(el.tag, str) and el is not node and _day(_shown(el), order) == want:
            best = el
    if best is None and _day(node.text_content(), order) == want:
        return node
    return best


def _shown(el: Element) -> str:
    """What a date selector reads from an element (as html.date_text_of)."""
    machine = el.get("datetime") if el.tag == "time" else None
    return machine.strip() if machine and machine.strip() else str(el.text_content())


def _summary_text(fragment: str | None) -> str | None:
    if not fragment:
        return None
    return _dense(lxml.html.fragment_fromstring(fragment, create_parent="div").text_content())


def _summary_element(node: Element, text: str | None) -> Element | None:
    if not text:
        return None
    for el in node.iter():
        if isinstance(el.tag, str) and el is not node and _dense(el.text_content()) == text:
            return el
    return None


def _name(
    nodes: Sequence[Element],
    targets: Sequence[Element | None],
    same: Callable[[Element | None, int], bool],
) -> str | None:
    """The first candidate selector that finds an equivalent element in every item."""
    sample = next((t for t in targets if t is not None), None)
    if sample is None:
        return None
    for candidate in _candidates(sample, nodes[targets.index(sample)]):
        try:
            found = [select(node, candidate) for node in nodes]
        except ValueError:
            continue
        if all((same(hits[0], i) if hits else targets[i] is None) for i, hits in enumerate(found)):
            return candidate
    return None


def _kind(el: Element) -> str:
    classes = [c for c in (el.get("class") or "").split() if not _VOLATILE_CLASS.search(c)]
    return str(el.tag) + "".join(f".{c}" for c in classes[:1])


def _candidates(el: Element, item: Element) -> list[str]:
    tag = str(el.tag)
    classes = [c for c in (el.get("class") or "").split() if not _VOLATILE_CLASS.search(c)]
    out = [f"{tag}.{c}" for c in classes] + [tag]
    chain: list[str] = []
    for node in [el, *el.iterancestors()]:
        if node is item:
            break
        chain.insert(0, _kind(node))
        if len(chain) > 1:
            out.append(" > ".join(chain))
    return list(dict.fromkeys(out))


def _item_selectors(nodes: Sequence[Element]) -> list[str]:
    """Detection's name for the items first, then longer paths from an ancestor with an
    id or classes (the page as fetched still holds the lists detection set aside)."""
    first = nodes[0]
    own = _kind(first)
    out = [detect.describe(nodes)]
    parent = first.getparent()
    if parent is not None:
        out.append(f"{_kind(parent)} > {own}")
    chain = [own]
    for ancestor in list(first.iterancestors())[:6]:
        if ancestor.tag in ("html", "body"):
            break
        chain.insert(0, _named(ancestor))
        out.append(" > ".join(chain))
        if ancestor.get("id"):
            break
    out.append(own)
    return list(dict.fromkeys(out))


def _named(el: Element) -> str:
    """Tag, stable id and stable classes: as precise as the page allows."""
    ident = el.get("id") or ""
    stable_id = re.fullmatch(r"-?[A-Za-z_][\w-]*", ident) and not re.search(r"\d{3}", ident)
    classes = [
        c
        for c in (el.get("class") or "").split()
        if not _VOLATILE_CLASS.search(c) and re.fullmatch(r"-?[A-Za-z_][\w-]*", c)
    ]
    return str(el.tag) + (f"#{ident}" if stable_id else "") + "".join(f".{c}" for c in classes[:2])
