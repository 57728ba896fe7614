"""Render: stories -> RSS 2.0 and Atom 1.0 documents (bytes). feedgen is used only here.

Output depends only on the stories: the feed's updated / lastBuildDate is the newest change
among its entries, never the clock, so an unchanged feed renders to identical bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType

from feedgen.feed import FeedGenerator

from . import __version__
from .dedup import Story

__all__ = ["FeedInfo", "render_atom", "render_rss"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedInfo:
    id: str
    title: str
    description: str
    home: str  # the human page the feed stands for
    base_url: str | None = None  # public URL of the output folder
    language: str = "de"
    # the page of each source, the link of an entry that has none of its own
    source_pages: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def self_url(self, extension: str) -> str | None:
        return f"{self.base_url}{self.id}.{extension}" if self.base_url else None

    @property
    def atom_id(self) -> str:
        own = self.self_url("atom")
        if own:
            return own
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.home}#civicfeed:{self.id}')}"


def render_rss(info: FeedInfo, stories: Sequence[Story], zone: tzinfo) -> bytes:
    data: bytes = _build(info, stories, zone, "rss").rss_str(pretty=True)
    return data


def render_atom(info: FeedInfo, stories: Sequence[Story], zone: tzinfo) -> bytes:
    data: bytes = _build(info, stories, zone, "atom").atom_str(pretty=True)
    return data


def feed_updated(stories: Sequence[Story]) -> datetime:
    return max((_entry_updated(s) for s in stories), default=_EPOCH)


def _entry_updated(story: Story) -> datetime:
    return max(story.updated, story.published)


def _build(info: FeedInfo, stories: Sequence[Story], zone: tzinfo, kind: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(info.atom_id)
    fg.title(info.title)
    fg.description(info.description)
    fg.subtitle(info.description)
    fg.language(info.language)
    fg.author({"name": info.title})
    fg.generator("civicfeed", __version__)
    updated = feed_updated(stories).astimezone(zone)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    own = info.self_url(kind)
    if kind == "atom":
        fg.link(href=info.home, rel="alternate", type="text/html")
        if own:
            fg.link(href=own, rel="self", type="application/atom+xml")
    else:
        if own:  # becomes <atom:link rel="self"> in RSS, as the validators ask
            fg.link(href=own, rel="self", type="application/rss+xml")
        fg.link(href=info.home, rel="alternate")
    for story in stories:
        _add(fg, info, story, zone)
    return fg


def _add(fg: FeedGenerator, info: FeedInfo, story: Story, zone: tzinfo) -> None:
    entry = story.entry
    fe = fg.add_entry(order="append")
    fe.id(story.id)
    fe.guid(story.id, permalink=False)
    fe.title(entry.title)
    # Atom wants a link or content in every entry; an item without a link of its own still
    # stands on its source's page
    fe.link(href=entry.link or info.source_pages.get(entry.source_id, info.home), rel="alternate")
    if entry.summary:
        fe.summary(entry.summary, type="html")  # also the RSS <description>
    fe.published(entry.published.astimezone(zone))
    fe.pubDate(entry.published.astimezone(zone))
    fe.updated(_entry_updated(story).astimezone(zone))
