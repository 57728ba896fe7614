"""OPML 2.0: every feed, for import into feed readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urljoin

from lxml import etree

from ..xmlsafe import scrub
from .model import FeedInfo

__all__ = ["absolute_opml", "render_opml"]


def render_opml(title: str, feeds: Sequence[FeedInfo], updated: datetime | None) -> bytes:
    """``updated``: the newest change of any feed; None (no entries yet) leaves it out."""
    title, feeds = scrub(title), scrub(feeds)  # last guard: XML-safe whatever came in
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    if updated is not None:
        etree.SubElement(head, "dateModified").text = format_datetime(updated)
    body = etree.SubElement(root, "body")
    for info in feeds:
        etree.SubElement(
            body,
            "outline",
            type="rss",
            text=info.title,
            title=info.title,
            description=info.description,
            xmlUrl=info.url(f"{info.id}.rss"),
            htmlUrl=info.home,
            language=info.language,
        )
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def absolute_opml(document: bytes, base: str) -> bytes:
    """An OPML file written without base_url, its feed addresses absolute against ``base``."""
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    for outline in root.iter("outline"):
        for name in ("xmlUrl", "htmlUrl"):
            value = outline.get(name)
            if value is not None:
                outline.set(name, urljoin(base, value))
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
