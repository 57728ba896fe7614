"""``civicfeed add URL``: from an address to a complete source in sources.yaml.

The address is fetched once. A feed is taken as it is. A page that names its feeds
(``<link rel="alternate">``) is read through the first of them that has entries; a page
that names none gets a few guesses at its CMS's usual feed address, and a guessed feed is
taken only when it carries the page's own stories. Otherwise the page is a listing: the
items are detected and the selectors detection used are pinned in the new source, so that
it reads the page the same way when detection changes.

The new file is validated by the normal loader and previewed like ``check`` before it is
written (atomically); a source that yields no entries is not added.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

from .config import Config, Source, parse_config
from .errors import CivicfeedError, ConfigError, ExtractError, FetchError
from .extract import extract
from .extract.discover import document_kind, feed_links, guessed_feeds, page_title
from .extract.feed import feed_title
from .extract.html import parse_page
from .extract.pin import pin_listing
from .fetch import Fetcher, user_agent
from .models import Extraction, FeedLink, Fetched, Pinned
from .netpolicy import trusted_hosts
from .refresh import Inspection, inspect_source
from .write import write_if_changed
from .yamledit import append_source

__all__ = ["AddResult", "Proposal", "add_source", "propose"]

TIMEOUT = 20.0
MAX_BYTES = 10 * 10**6
MAX_LINKED = 3  # feeds named by the page that are tried at most
_ID_LENGTH = 40
_DULL_SEGMENTS = {"index", "index.html", "index.php", "home", "de", "en"}


class AddError(CivicfeedError):
    """The address gives no source: the message says why. Nothing is written."""

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__("\n  ".join([message, *reasons]))


@dataclass(frozen=True)
class Proposal:
    """The source to add, how it was found, and the document it reads; for a feed, also
    what the document yields (read once, here: the preview does not parse it again)."""

    source: dict[str, Any]
    fetched: Fetched
    reasons: tuple[str, ...] = ()
    extraction: Extraction | None = None
    pinned: Pinned | None = None  # for a listing: what pinning found on the page


@dataclass(frozen=True)
class AddResult:
    proposal: Proposal
    inspection: Inspection
    config: Config
    written: bool
    before: str = field(repr=False, default="")
    after: str = field(repr=False, default="")

    @property
    def added(self) -> str:
        """The lines the file gains (one block)."""
        old, new = self.before.splitlines(), self.after.splitlines()
        start = 0
        while start < len(old) and old[start] == new[start]:
            start += 1
        end = 0
        while end < len(old) - start and old[-1 - end] == new[-1 - end]:
            end += 1
        return "\n".join(new[start : len(new) - end])


async def propose(
    url: str,
    *,
    fetcher: Fetcher,
    taken: Collection[str] = (),
    source_id: str | None = None,
    title: str | None = None,
) -> Proposal:
    """What the address is, and the source that reads it; AddError if it gives none."""
    fetched = await _get(fetcher, url)
    reasons: list[str] = []
    if document_kind(fetched) == "feed":
        extraction = _read_feed(fetched)
        if extraction is None or not extraction.items:
            raise AddError(f"{fetched.url} is a feed without entries; nothing to add")
        reasons.append(f"{url} is a feed with {len(extraction.items)} entries")
        block = _block(fetched.url, title or feed_title(fetched), url, taken, source_id)
        return Proposal(block, fetched, tuple(reasons), extraction)
    root, _ = parse_page(fetched)
    name = title or page_title(root)
    found = await _linked_feed(fetcher, fetched, feed_links(root, fetched.url), reasons)
    if found is None:
        anchors = {_same(a.get("href") or "") for a in root.iter("a")}
        found = await _guessed_feed(fetcher, guessed_feeds(root, fetched.url), anchors, reasons)
    if found is not None:
        feed, extraction = found
        block = _block(feed.url, title or feed_title(feed) or name, url, taken, source_id)
        block["home"] = fetched.url
        return Proposal(block, feed, tuple(reasons), extraction)
    pinned = pin_listing(fetched, root=root)
    if pinned is None:
        raise AddError(
            f"{fetched.url} is a page without a feed and without a recognisable listing "
            "(no repeated items with a link and text); nothing to add",
            reasons,
        )
    block = _block(fetched.url, name, url, taken, source_id)
    if pinned.exact:
        reasons.append(f"no feed: the page is read as a listing of {pinned.items} items")
        block["html"] = pinned.as_dict()
        if "date" not in block["html"]:
            reasons.append("the listing shows no dates: they are read from the detail pages")
            block["html"]["detail_date"] = "auto"
    else:
        reasons.append(
            f"no feed: the page is read as a listing of {pinned.items} items, found by "
            "automatic detection (selectors that read it the same way were not found)"
        )
        block["html"] = "auto"
    reasons.extend(pinned.notes)
    return Proposal(block, fetched, tuple(reasons), pinned=pinned)


async def add_source(
    config_path: Path,
    url: str,
    *,
    source_id: str | None = None,
    title: str | None = None,
    dry_run: bool = False,
) -> AddResult:
    """Propose, validate, preview and (unless ``dry_run``) append the source."""
    text = _read(config_path)
    taken = _ids(text, config_path) if text.strip() else set()
    if source_id is not None and source_id in taken:
        raise ConfigError(
            f"a source with id {source_id!r} exists already", path=str(config_path), key="--id"
        )
    # the address given is trusted (the operator typed it); links found on it are checked
    async with Fetcher(agent=user_agent(), trusted=trusted_hosts([url])) as fetcher:
        proposal = await propose(
            url, fetcher=fetcher, taken=taken, source_id=source_id, title=title
        )
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    new_text = append_source(
        text,
        proposal.source,
        comment=f"added by `civicfeed add` on {when}",
        where=str(config_path),
    )
    config = parse_config(new_text, config_path)  # the normal loader: the file must stay valid
    source = config.source(proposal.source["id"])
    inspection = await inspect_source(
        config,
        source,
        fetched=proposal.fetched,
        extraction=proposal.extraction,
        pinned=proposal.pinned,
    )
    if inspection.error or not inspection.candidates:
        why = inspection.error or "no entries: " + "; ".join(inspection.warnings[:3])
        raise AddError(f"{url}: {why}; nothing added", proposal.reasons)
    written = False
    if not dry_run:
        written = write_if_changed(config_path, new_text.encode("utf-8"))
    return AddResult(proposal, inspection, config, written, text, new_text)


# --- finding the feed ----------------------------------------------------------------------


async def _get(fetcher: Fetcher, url: str) -> Fetched:
    try:
        return await fetcher.fetch(url, timeout=TIMEOUT, max_bytes=MAX_BYTES)
    except FetchError as exc:
        raise AddError(f"{url}: {exc}") from exc


# a feed source as a refresh reads it: extract() reads a feed by its kind alone
_A_FEED = Source(id="feed", url="https://feed.invalid/")


def _read_feed(fetched: Fetched) -> Extraction | None:
    """What the feed yields, exactly as its source will read it; None if it cannot be read."""
    try:
        return extract(fetched, _A_FEED)
    except ExtractError:
        return None


async def _try_feed(
    fetcher: Fetcher, link: FeedLink
) -> tuple[tuple[Fetched, Extraction] | None, str]:
    try:
        fetched = await fetcher.fetch(link.url, timeout=TIMEOUT, max_bytes=MAX_BYTES)
    except FetchError as exc:
        return None, str(exc)
    if document_kind(fetched) != "feed":
        return None, "not a feed"
    try:
        extraction = extract(fetched, _A_FEED)
    except ExtractError as exc:
        return None, str(exc)
    if not extraction.items:
        return None, "no entries"
    return (fetched, extraction), f"{len(extraction.items)} entries"


async def _linked_feed(
    fetcher: Fetcher, page: Fetched, links: list[FeedLink], reasons: list[str]
) -> tuple[Fetched, Extraction] | None:
    if links:
        names = "; ".join(link.describe() for link in links)
        reasons.append(f"the page names {len(links)} feed(s): {names}")
    for link in links[:MAX_LINKED]:
        found, how = await _try_feed(fetcher, link)
        if found is not None:
            reasons.append(f"using {link.describe()}: {how}")
            return found
        reasons.append(f"{link.url}: {how}")
    return None


async def _guessed_feed(
    fetcher: Fetcher, guesses: list[FeedLink], anchors: set[str], reasons: list[str]
) -> tuple[Fetched, Extraction] | None:
    for guess in guesses:
        found, how = await _try_feed(fetcher, guess)
        if found is None:
            reasons.append(f"tried {guess.url}: {how}")
            continue
        links = [_same(item.link or "") for item in found[1].items[:10]]
        shared = sum(1 for link in links if link and link in anchors)
        if shared * 2 >= len(links):
            reasons.append(f"found a feed at {guess.url} ({how}) with the page's stories")
            return found
        reasons.append(
            f"{guess.url} is a feed ({how}), but only {shared} of its first {len(links)} "
            "stories are on the page: not taken"
        )
    return None


def _same(link: str) -> str:
    """A link as compared between a page and its feed."""
    return urldefrag(link.strip())[0].rstrip("/")


# --- the new source ------------------------------------------------------------------------


def _block(
    url: str, title: str, given: str, taken: Collection[str], source_id: str | None
) -> dict[str, Any]:
    title = " ".join(title.split())[:200] or urlsplit(given).hostname or given
    return {"id": source_id or unique_id(given, title, taken), "title": title, "url": url}


def unique_id(url: str, title: str, taken: Collection[str]) -> str:
    """An id from the address (host, then the last path segment), else the title; unique."""
    split = urlsplit(url)
    host = (split.hostname or "").removeprefix("www.")
    labels = host.split(".")
    if len(labels) > 1 and not host.replace(".", "").isdigit():
        labels = labels[:-1]  # the top-level domain says nothing
    segments = [s for s in split.path.split("/") if s and s.lower() not in _DULL_SEGMENTS]
    parts = ["-".join(labels)]
    if segments:
        parts.append(
            re.sub(r"\.(html?|php|xml|rss|atom|json|aspx?)$", "", segments[-1], flags=re.I)
        )
    base = _slug("-".join(parts)) or _slug(title) or "source"
    base = base[:_ID_LENGTH].strip("-")
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _slug(text: str) -> str:
    text = text.replace("ß", "ss")
    for umlaut, plain in (
        ("ä", "ae"),
        ("ö", "oe"),
        ("ü", "ue"),
        ("Ä", "ae"),
        ("Ö", "oe"),
        ("Ü", "ue"),
    ):
        text = text.replace(umlaut, plain)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None


def _ids(text: str, path: Path) -> set[str]:
    """The ids the file uses for sources and aggregates (it must be valid to be added to)."""
    config = parse_config(text, path)
    return {s.id for s in config.sources} | {f.id for f in config.feeds}
