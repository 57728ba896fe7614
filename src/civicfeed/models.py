"""The frozen records that cross stage boundaries.

fetch -> Fetched; extract -> Item; normalise -> Candidate; deduplicate/store -> Entry.
All datetimes are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class Validators:
    """What a previous response said about itself, for a conditional request."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """One HTTP response, as far as the rest of the pipeline cares."""

    url: str  # the final URL, after redirects
    status: int
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # header names are lower-case
    content: bytes = b""
    validators: Validators = field(default_factory=Validators)
    elapsed: float = 0.0  # seconds from the request's start (its connection slot) to its end

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Item:
    """One item as extracted from a listing or feed, before any interpretation."""

    title: str
    link: str | None = None
    date_text: str | None = None  # the date as written at the origin
    date_hint: datetime | None = None  # a date the feed library already parsed, if any
    summary_html: str | None = None
    guid: str | None = None  # the origin's own identifier, for feeds


@dataclass(frozen=True)
class Extraction:
    items: tuple[Item, ...]
    kind: Literal["html", "feed"]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """An item normalised: clean title, absolute link, aware date, safe summary."""

    source_id: str
    title: str
    link: str | None
    published: datetime | None  # None: no readable date; the entry's first-seen time is used
    summary: str
    guid: str | None = None
    content: str | None = None  # the article from the detail page (follow), sanitised


@dataclass(frozen=True)
class Entry:
    """An entry as stored. ``id`` is assigned once, when first seen, and never changes."""

    id: str
    source_id: str
    title: str
    link: str | None
    published: datetime
    date_known: bool
    summary: str
    first_seen: datetime
    updated: datetime  # the last time title, link, date, summary or content changed
    guid: str | None = None
    content: str = ""  # the article from the detail page (follow); "" if none was read


@dataclass(frozen=True)
class DetailPage:
    """What the store remembers of an entry's detail page, for a conditional request."""

    url: str
    validators: Validators = field(default_factory=Validators)
    checked: datetime | None = None  # the last time it was requested
    failures: int = 0  # consecutive failed requests; it is tried again a few times


@dataclass(frozen=True)
class SourceState:
    """What the store remembers about a source between runs."""

    source_id: str
    validators: Validators = field(default_factory=Validators)
    last_item_count: int | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
