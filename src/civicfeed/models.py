"""The frozen records that cross stage boundaries.

fetch -> Fetched; extract -> Item; normalise -> Candidate (a document's: Normalised);
deduplicate/store -> Entry.
All datetimes are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeVar

_Record = TypeVar("_Record")


def made(kind: type[_Record], **fields: Any) -> _Record:
    """A record of one of the frozen classes here made as pickle rebuilds one: its fields set
    at once, given in the class's order, without the checks of the frozen ``__init__`` (two
    thirds of the time of making one). For the paths that make one per item or per stored
    entry; every field must be given, and the values' types are the caller's to get right."""
    record: _Record = object.__new__(kind)
    record.__dict__.update(fields)
    return record


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
    title: str | None = None  # the document's own title: the feed's, or the page's <title>
    language: str | None = None  # its declared language: <language>, xml:lang, <html lang>


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
class Normalised:
    """A fetched document extracted and normalised (the work of a parsing process): its
    candidates, each with its item's date as written, and what extraction and normalisation
    said."""

    candidates: tuple[Candidate, ...]
    date_texts: tuple[str | None, ...]  # per candidate: its item's date text, if any
    warnings: tuple[str, ...]
    items: int  # items extracted, those that gave no candidate included
    title: str | None = None  # the document's own title (see Extraction)
    language: str | None = None


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
class FeedTotals:
    """What the index and the OPML file say of a published feed, kept in the store so that
    they are rendered without reading the feed's entries (by whichever process publishes)."""

    feed_id: str
    count: int  # its stories
    updated: datetime  # the newest change among them (the epoch when it has none)
    newest: Entry | None = None  # the newest story's shown copy (its summary and article left out)


@dataclass(frozen=True)
class DetailPage:
    """What the store remembers of an entry's detail page, for a conditional request."""

    url: str
    validators: Validators = field(default_factory=Validators)
    checked: datetime | None = None  # the last time it was requested
    failures: int = 0  # consecutive failed requests; it is tried again a few times
    # the listing (its digest) for which the page was read for a date and showed none: it is
    # not read for a date again until the listing changes
    undated_listing: str | None = None


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
    settings: str | None = None  # digest of the extraction settings of the last success
    title: str | None = None  # the title the source itself declared (feed or page title)
    language: str | None = None  # the language it declared


# --- extract: what the configuration tools (add, check) and full text are given ----------


@dataclass(frozen=True)
class FeedLink:
    """A feed a page offers, or that its CMS usually has."""

    url: str
    kind: str  # "RSS", "Atom", "JSON Feed", or "" when guessed
    title: str = ""
    linked: bool = True  # named by the page itself (not guessed)

    def describe(self) -> str:
        what = self.kind or "feed"
        return f"{what} {self.url}" + (f" ({self.title})" if self.title else "")


@dataclass(frozen=True)
class Pinned:
    """Selectors for sources.yaml, in the order they are written there."""

    selectors: tuple[tuple[str, str], ...]
    items: int  # how many items detection found
    exact: bool  # the selectors read the same titles, links and dates as detection
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        return dict(self.selectors)


@dataclass(frozen=True)
class Explained:
    """The selectors a listing is read with, for ``check`` to show."""

    selectors: tuple[tuple[str, str], ...]
    detected: bool  # the item selector was found by detection, not configured
    # when a configured item selector matches nothing: what detection would pick now
    suggestion: Pinned | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Article:
    html: str | None  # the article's HTML (unsanitised), None if none was found
    date_text: str | None  # the article's date: from its metadata (ISO), else its text
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputFile:
    """A published file as an output holds it (write.py): its name relative to the output
    (``herne.rss``, ``archive/herne/1.atom``), strong ETag, when its bytes last changed, media
    type, and its bytes (None when only listed)."""

    name: str
    etag: str
    modified: datetime
    media_type: str
    data: bytes | None = None
