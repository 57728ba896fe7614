"""Existing feeds: RSS and Atom through feedparser, JSON Feed through json.

feedparser is used only here; its dictionaries are turned into Items at once. Plain RSS 2.0,
RSS 1.0 and Atom 1.0 are read by the fast path (fastfeed), which gives the same dictionaries
for the fields read here, or gives the document up to feedparser.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.api
import lxml.html
from feedparser.datetimes import _parse_date

from ..errors import ExtractError
from ..models import Extraction, Fetched, Item, made
from . import fastfeed
from .encoding import browser_codec, http_charset
from .xmlscan import scan

_XML_DECL_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*encoding\s*=\s*["'])([^"']+)(["'])""")
_REFUSED = "the feed declares XML entities (a DOCTYPE with an internal subset); refused for safety"
_ROOT_CLOSED = re.compile(rb"</(?:\w+:)?(?:rss|feed|RDF)>\s*(?:<!--.*?-->\s*)*$", re.DOTALL)
_JSON_TYPES = {"application/feed+json", "application/json"}
_FEED_VERSIONS_HINT = "expected RSS, Atom or JSON Feed"


def extract_feed(fetched: Fetched, max_items: int = 1000) -> Extraction:
    body = fetched.content.lstrip()
    if not body:
        raise ExtractError("the response is empty")
    if fetched.content_type in _JSON_TYPES or body.startswith(b"{"):
        return _extract_json(fetched.content)
    return _extract_xml(fetched, max_items)


# --- RSS / Atom ----------------------------------------------------------------------------


def _extract_xml(fetched: Fetched, max_items: int) -> Extraction:
    # An internal DTD subset declares entities: entity expansion ("billion laughs") or
    # external entities (XXE). No real feed needs one; such a document is refused unread.
    scanned = scan(fetched.content, max_items)
    if scanned.internal_subset:
        raise ExtractError(_REFUSED)
    content, headers = prepared(fetched, scanned.content)
    warnings: list[str] = []
    if scanned.items is not None:
        warnings.append(f"more than {max_items} items in the feed; only the first are read")
    fast = read_fast(content, headers)
    if fast is not None:
        return _declared(_extraction(fast.entries, _xml_item, warnings), fast.feed)
    try:
        parsed = feedparser.parse(
            content, response_headers=headers, sanitize_html=True, resolve_relative_uris=True
        )
    except _EntitiesDeclared:
        raise ExtractError(_REFUSED) from None
    except Exception as exc:  # feedparser fails in many ways on garbage
        raise ExtractError(f"not a feed: the parser gave up ({type(exc).__name__}: {exc})") from exc
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        raise ExtractError(f"not a feed ({_FEED_VERSIONS_HINT}): {_describe(fetched, parsed)}")
    if parsed.get("bozo") and not _ROOT_CLOSED.search(content[-1024:]):
        # a cut-off document would be read as a feed with fewer entries than it has
        raise ExtractError(f"the feed is incomplete (truncated?): {parsed.get('bozo_exception')}")
    if parsed.get("bozo") and parsed.get("bozo_exception") is not None:
        warnings.append(f"feed is not well-formed, read leniently: {parsed['bozo_exception']}")
    return _declared(_extraction(entries, _xml_item, warnings), parsed.get("feed") or {})


def _declared(extraction: Extraction, feed: Mapping[str, Any]) -> Extraction:
    """The extraction with the feed's own title and language (feedparser's feed keys)."""
    title = " ".join(_plain(feed.get("title", "") or "", feed.get("title_detail")).split())
    return replace(extraction, title=title or None, language=_language(feed.get("language")))


class _EntitiesDeclared(Exception):
    pass


_replace_doctype = feedparser.api.replace_doctype


def _no_entities(data: bytes) -> tuple[str | None, bytes, dict[str, str]]:
    """feedparser's own DOCTYPE step, which may re-declare "safe" entities for its parsers to
    expand: whatever slipped past the scan (an entity declaration inside a comment, say)
    stops the parse here, so that no entity is ever expanded."""
    version, data, entities = _replace_doctype(data)
    if entities:
        raise _EntitiesDeclared
    return version, data, entities


feedparser.api.replace_doctype = _no_entities


def prepared(fetched: Fetched, content: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """The document (``content``: as the scan left it) and headers as both paths read them."""
    body = fetched.content if content is None else content
    content, headers = _as_browsers_read_latin1(body, dict(fetched.headers))
    headers.setdefault("content-location", fetched.url)
    return content, headers


@functools.lru_cache(maxsize=8192)
def _feedparser_date(text: str) -> time.struct_time | None:
    """feedparser's reading of a date text (a pure function: a feed read again after a
    change repeats most of its dates)."""
    parsed: time.struct_time | None = _parse_date(text)
    return parsed


def read_fast(content: bytes, headers: Mapping[str, str]) -> fastfeed.FastFeed | None:
    """The fast path's reading, or None: then feedparser reads the document."""
    try:
        return fastfeed.read(content, headers, _feedparser_date)
    except fastfeed.NotUnderstood:
        return None
    except Exception:  # a case the fast path gets wrong is feedparser's to read
        return None


def _extraction(
    entries: Sequence[Any], convert: Callable[[Any], Item | None], warnings: list[str]
) -> Extraction:
    """The items that could be read; a warning for each that could not. Every entry is
    converted on its own: one that cannot be read never fails its siblings."""
    items = []
    for position, entry in enumerate(entries, start=1):
        try:
            item = convert(entry)
        except Exception as exc:
            warnings.append(
                f"entry {position}: could not be read, skipped ({type(exc).__name__}: {exc})"
            )
            continue
        if item is None:
            warnings.append(f"entry {position}: not an item, skipped")
        else:
            items.append(item)
    return Extraction(tuple(items), "feed", tuple(warnings))


def _xml_item(entry: dict[str, Any]) -> Item | None:
    title = _plain(entry.get("title", ""), entry.get("title_detail"))
    summary = entry.get("summary")
    content = entry.get("content")
    if not summary and content:
        summary = content[0].get("value")
    # an item without a title is kept: the normaliser titles it from its summary or link
    # dict.get: feedparser's own lookup maps a missing "updated" to "published", with a warning
    date_text = _first_of(entry, "published", "updated", "created")
    parsed = _first_of(entry, "published_parsed", "updated_parsed", "created_parsed")
    try:
        hint = _utc(parsed) if parsed else None
    except (ValueError, OverflowError):  # year 0 or 10000 once its offset is applied
        hint = None
    return made(  # one per entry: without the frozen __init__'s checks
        Item,
        title=title,
        link=entry.get("link") or None,
        date_text=date_text,
        date_hint=hint,
        summary_html=summary or None,
        guid=entry.get("id") or None,
    )


def _utc(parsed: time.struct_time) -> datetime:
    """``datetime.fromtimestamp(calendar.timegm(parsed), UTC)``: for the fields of a valid
    time (what feedparser gives, leap seconds aside) the time they name, made at once."""
    year, month, day, hour, minute, second = parsed[:6]
    if second < 60:
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            pass  # out of range: calendar.timegm carries it over
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _first_of(entry: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = dict.get(entry, key)
        if value:
            return value
    return None


def _plain(value: str, detail: Mapping[str, Any] | None) -> str:
    if detail and "html" in str(detail.get("type", "")) and "<" in value:
        try:
            return str(lxml.html.fragment_fromstring(value, create_parent="div").text_content())
        except Exception:
            return value
    return value


def _describe(fetched: Fetched, parsed: Mapping[str, Any]) -> str:
    head = fetched.content[:512].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return "the document is an HTML page"
    problem = parsed.get("bozo_exception")
    return str(problem) if problem else "no feed elements found"


def _as_browsers_read_latin1(
    content: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    """A feed declared ISO-8859-1 is re-encoded from windows-1252 to UTF-8.

    feedparser would decode it as ISO-8859-1 and turn the common windows-1252 quotes and
    dashes into control characters. Everything else is left to feedparser.
    """
    declared = http_charset(headers)
    match = _XML_DECL_ENCODING.match(content)
    if declared is None and match:
        declared = match.group(2).decode("ascii", "replace")
    if browser_codec(declared) != "cp1252":
        return content, headers
    text = content.decode("cp1252", errors="replace").encode("utf-8")
    if match:
        text = _XML_DECL_ENCODING.sub(rb"\g<1>utf-8\g<3>", text, count=1)
    media = headers.get("content-type", "application/xml").split(";")[0]
    return text, {**headers, "content-type": f"{media}; charset=utf-8"}


# --- JSON Feed -----------------------------------------------------------------------------


def _extract_json(content: bytes) -> Extraction:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise ExtractError(f"not a JSON feed: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ExtractError("not a JSON feed: no 'items' list")
    extraction = _extraction(document["items"], _json_item, [])
    title = document.get("title")
    return replace(
        extraction,
        title=" ".join(title.split()) or None if isinstance(title, str) else None,
        language=_language(document.get("language")),
    )


_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def _language(value: object) -> str | None:
    """A declared language that is a language tag ("de", "en-US"), else None."""
    if not isinstance(value, str):
        return None
    value = value.strip().replace("_", "-")
    return value if _LANGUAGE.match(value) else None


def _json_item(raw: object) -> Item | None:
    if not isinstance(raw, dict):
        return None
    text = raw.get("title")
    title = text if isinstance(text, str) else ""  # plain text, as written: never decoded
    summary = raw.get("content_html") or raw.get("summary") or raw.get("content_text")
    if not isinstance(summary, str):
        summary = None
    link = raw.get("url") or raw.get("external_url")
    date_text = raw.get("date_published") or raw.get("date_modified")
    guid = raw.get("id")
    return Item(
        title=title,
        link=link if isinstance(link, str) else None,
        date_text=date_text if isinstance(date_text, str) else None,
        summary_html=summary,
        guid=str(guid) if guid is not None else None,
    )


def feed_title(fetched: Fetched) -> str:
    """The feed's own title, or "" (for naming a source that is being added)."""
    body = fetched.content.lstrip()
    if fetched.content_type in _JSON_TYPES or body.startswith(b"{"):
        try:
            document = json.loads(fetched.content)
        except (ValueError, RecursionError):
            return ""
        title = document.get("title") if isinstance(document, dict) else None
        return " ".join(title.split()) if isinstance(title, str) else ""
    scanned = scan(fetched.content, 1)  # the title comes before the first item
    if scanned.internal_subset:
        return ""
    content, headers = _as_browsers_read_latin1(scanned.content, dict(fetched.headers))
    fast = read_fast(content, {"content-location": fetched.url, **headers})
    if fast is not None:
        feed = fast.feed
        return " ".join(_plain(feed.get("title", ""), feed.get("title_detail")).split())
    try:
        parsed = feedparser.parse(content, response_headers=headers, sanitize_html=True)
    except Exception:  # _EntitiesDeclared among them
        return ""
    feed = parsed.get("feed") or {}
    return " ".join(_plain(feed.get("title", ""), feed.get("title_detail")).split())
