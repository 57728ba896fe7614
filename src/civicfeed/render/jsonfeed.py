"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1), written with the json module."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import lxml.html

from ..dedup import Story
from ..xmlsafe import scrub
from .model import FeedInfo, entry_updated, in_zone, origins, summary_html

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
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _text(fragment: str) -> str:
    return " ".join(
        lxml.html.fragment_fromstring(fragment, create_parent="div").text_content().split()
    )


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
    item["date_published"] = in_zone(entry.published, zone).isoformat()
    item["date_modified"] = in_zone(entry_updated(story), zone).isoformat()
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
