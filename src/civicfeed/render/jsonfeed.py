"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1), written with the json module.

Written compactly, without indentation or spaces after separators: the json module then
encodes with its C encoder (``indent`` sends it to the pure-Python one, five times slower),
and feed readers do not care how a machine format is laid out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import lxml.html

from ..dedup import Story
from ..xmlsafe import scrub
from .model import FeedInfo, entry_updated, origins, summary_html, zoned_text

__all__ = ["render_json"]

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(info: FeedInfo, stories: Sequence[Story], zone: tzinfo) -> bytes:
    info, stories = scrub(info), scrub(stories)  # last guard: XML-safe whatever came in
    document: dict[str, Any] = {
        "version": VERSION,
        "title": info.title,
        "home_page_url": info.home,
        "description": info.description,
        "language": info.language,
        "authors": [{"name": info.title}],
    }
    own = info.self_url("json")
    if own:
        document["feed_url"] = own
    if info.hub:
        document["hubs"] = [{"type": "WebSub", "url": info.hub}]
    document["items"] = [_item(info, story, zone) for story in stories]
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# a start or end tag whose end is unambiguous: a name, then attributes whose quoted values
# hold no angle brackets (possessive: linear whatever the text)
_TAG = re.compile(
    r"""</?[A-Za-z][^<>"'=]*+(?:=\s*+(?:"[^"<>]*+"|'[^'<>]*+'|[^<>"'\s=]*+)[^<>"'=]*+)*+>"""
)
# elements whose content is not markup, or that an HTML parser moves about
_SPECIAL = re.compile(
    r"<\s*/?\s*(?:script|style|xmp|plaintext|textarea|title|iframe|noembed|noframes|noscript"
    r"|html|head|body|frameset|frame|meta|link|base)\b",
    re.IGNORECASE,
)


def _text(fragment: str) -> str:
    """The text of an HTML fragment, its white space collapsed. Summaries are sanitised HTML,
    whose tags are plain: those are taken out directly; anything that needs an HTML parser's
    judgement (entities, comments, stray angle brackets, script) is parsed by lxml."""
    if _SPECIAL.search(fragment) is None:
        text = _TAG.sub("", fragment)
        if "<" not in text and ">" not in text and "&" not in text:
            return " ".join(text.split())
    try:
        parsed = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (AssertionError, lxml.etree.ParserError):
        # it started with <html> and so was read as a document, one without a body: its
        # text as the content of one
        parsed = lxml.html.document_fromstring(f"<html><body>{fragment}</body></html>")
    return " ".join(parsed.text_content().split())


def _item(info: FeedInfo, story: Story, zone: tzinfo) -> dict[str, Any]:
    entry = story.entry
    item: dict[str, Any] = {
        "id": story.id,
        "url": entry.link or info.page_of(entry.source_id),
        "title": entry.title,
    }
    summary = summary_html(info, story)
    if entry.content:  # the article (follow); the teaser is the summary, as plain text
        item["content_html"] = entry.content
        if summary:
            item["summary"] = _text(summary)
    elif summary:
        item["content_html"] = summary
    else:
        item["content_text"] = entry.title
    item["date_published"] = zoned_text(entry.published, zone)
    item["date_modified"] = zoned_text(entry_updated(story), zone)
    if info.aggregate:
        ref = info.sources.get(entry.source_id)
        # JSON Feed extensions are objects whose key starts with an underscore
        item["_civicfeed"] = {
            "source": {
                "id": entry.source_id,
                "title": ref.title if ref else entry.source_id,
                "url": ref.page if ref else None,
                "feed_url": ref.atom_url if ref else None,
            },
            "also_published_by": [
                {"title": title, "url": link} for title, link in origins(info, story)
            ],
        }
    return item
