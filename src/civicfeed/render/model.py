"""What the renderers are given: a feed's identity, its sources, and one document's place."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from html import escape
from types import MappingProxyType

from ..dedup import Story

__all__ = [
    "Archive",
    "FeedInfo",
    "SourceRef",
    "entry_updated",
    "feed_updated",
    "in_zone",
    "origins",
    "summary_html",
    "zoned_text",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SourceRef:
    """A source as an entry's origin: for attribution and for entries without a link."""

    id: str
    title: str
    page: str  # the human page: the listing, or the home page of a feed source
    atom_id: str  # the id of the source's own Atom feed of ours
    atom_url: str | None = None  # where the source's own feeds of ours are (with base_url)
    rss_url: str | None = None


@dataclass(frozen=True)
class FeedInfo:
    id: str
    title: str
    description: str
    home: str  # the human page the feed stands for
    base_url: str | None = None  # public URL of the output folder
    language: str = "de"
    sources: Mapping[str, SourceRef] = field(default_factory=lambda: MappingProxyType({}))
    aggregate: bool = False  # entries carry their origin (atom:source, <source>, ...)
    hub: str | None = None  # WebSub hub
    # the feed's updated / lastBuildDate while it has no entries: when it was first written
    # (kept out of comparisons and of the digest of what a feed is rendered from)
    empty_since: datetime | None = field(default=None, compare=False, repr=False)

    def url(self, name: str) -> str:
        """The URL of a file in the output folder: absolute with base_url, else relative."""
        return f"{self.base_url}{name}" if self.base_url else name

    def self_url(self, extension: str) -> str | None:
        return f"{self.base_url}{self.id}.{extension}" if self.base_url else None

    @property
    def atom_id(self) -> str:
        own = self.self_url("atom")
        if own:
            return own
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.home}#civicfeed:{self.id}')}"

    def page_of(self, source_id: str) -> str:
        ref = self.sources.get(source_id)
        return ref.page if ref else self.home


@dataclass(frozen=True)
class Archive:
    """Where a document stands in an RFC 5005 archive: page ``number`` (1 = oldest), or the
    subscription document when ``number`` is None; ``newest`` is the last complete page."""

    number: int | None
    newest: int

    def name(self, feed_id: str, extension: str, number: int | None) -> str:
        return (
            f"{feed_id}.{extension}"
            if number is None
            else f"archive/{feed_id}/{number}.{extension}"
        )

    def links(self, info: FeedInfo, extension: str) -> list[tuple[str, str]]:
        """(rel, href) pairs: current, prev-archive, next-archive."""
        links = []
        if self.number is None:
            if self.newest:
                links.append(("prev-archive", self._href(info, extension, self.newest)))
            return links
        links.append(("current", self._href(info, extension, None)))
        if self.number > 1:
            links.append(("prev-archive", self._href(info, extension, self.number - 1)))
        if self.number < self.newest:
            links.append(("next-archive", self._href(info, extension, self.number + 1)))
        return links

    def _href(self, info: FeedInfo, extension: str, number: int | None) -> str:
        target = self.name(info.id, extension, number)
        if info.base_url:
            return info.base_url + target
        # relative to where this document is
        up = "" if self.number is None else "../../"
        return up + target


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in the feed's zone, for writing; in UTC where the zone's offset then had
    seconds (local mean time before 1893, "+00:53:28"), which RFC 822 and RFC 3339 cannot
    write."""
    try:
        local = moment.astimezone(zone)
    except OverflowError:  # the first or last day a datetime can hold
        return moment.astimezone(UTC)
    offset = local.utcoffset()
    if offset is not None and offset.seconds % 60:
        return moment.astimezone(UTC)
    return local


def zoned_text(moment: datetime, zone: tzinfo) -> str:
    """``in_zone(moment, zone).isoformat()`` (RFC 3339), remembered for the last few thousand
    moments in UTC (the store's): each story's dates are written by two formats or more."""
    if moment.tzinfo is UTC:
        return _zoned_text(moment, zone)
    return in_zone(moment, zone).isoformat()


@functools.lru_cache(maxsize=4096)
def _zoned_text(moment: datetime, zone: tzinfo) -> str:
    # keyed by an instant in UTC (equal keys, one instant) and the zone
    return in_zone(moment, zone).isoformat()


def entry_updated(story: Story) -> datetime:
    """The later of the story's last change and its date (the first of them when equal)."""
    updated, published = story.updated, story.entry.published
    return published if published > updated else updated


def feed_updated(stories: Sequence[Story], empty: datetime | None = None) -> datetime:
    """The newest change among the stories; ``empty`` (else the epoch) when there are none."""
    return max(map(entry_updated, stories), default=empty or EPOCH)


def origins(info: FeedInfo, story: Story) -> list[tuple[str, str]]:
    """(title, link) of every further source that published the story."""
    seen: set[str] = set()
    result = []
    for copy in story.origins:
        if copy.source_id in seen or copy.source_id == story.entry.source_id:
            continue
        seen.add(copy.source_id)
        ref = info.sources.get(copy.source_id)
        result.append(
            (ref.title if ref else copy.source_id, copy.link or info.page_of(copy.source_id))
        )
    return result


def summary_html(info: FeedInfo, story: Story) -> str:
    """The entry's summary; in an aggregate with a line crediting the other publishers."""
    summary = story.entry.summary
    credits = origins(info, story) if info.aggregate else []
    if not credits:
        return summary
    names = ", ".join(f'<a href="{escape(link)}">{escape(title)}</a>' for title, link in credits)
    return f"{summary}<p>Auch veröffentlicht von: {names}</p>"
