"""Feed discovery: what a fetched document is, and which feeds a page offers.

Pure functions of a fetched document. A page names its feeds with ``<link rel="alternate">``;
without one, the usual feed address of the CMS that made the page (its ``<meta
name="generator">`` or its asset paths) is guessed, and only a few such guesses are made.
"""

from __future__ import annotations

import json
import re
from typing import Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html

from ..models import FeedLink, Fetched

__all__ = [
    "MAX_GUESSES",
    "document_kind",
    "feed_links",
    "guessed_feeds",
    "page_title",
]

# guessed addresses probed at most per page: each is a request that most likely ends in a 404
MAX_GUESSES = 3

_FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
    "application/rdf+xml": "RSS",
}
_XML_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml")
_FEED_ROOT = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<\?xml-stylesheet[^>]*>\s*)*"
    rb"<(rss|feed|rdf:RDF)[\s>]",
    re.DOTALL,
)
# feeds of comments, not of the stories themselves
_COMMENTS = re.compile(r"comment|kommentar", re.IGNORECASE)

# (the CMS's name in <meta name="generator">, a path its pages' assets carry, its feed
# paths): relative to the site's root ("/..."), to the page itself ("?..."), or to the
# page's folder ("feed/", as WordPress category feeds are)
_CMS_FEEDS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("wordpress", "/wp-content/", ("feed/", "/feed/")),
    ("joomla", "/media/jui/", ("?format=feed&type=rss", "/index.php?format=feed&type=rss")),
    ("typo3", "/typo3conf/", ("?type=9818", "?type=100")),
    ("drupal", "/sites/default/files/", ("/rss.xml",)),
    ("hugo", None, ("/index.xml",)),
    ("jekyll", None, ("/feed.xml",)),
    ("ghost", None, ("/rss/",)),
)
_GENERIC_FEEDS = ("/feed/", "/rss.xml", "/atom.xml", "/feed.xml", "/rss")


def document_kind(fetched: Fetched) -> Literal["feed", "page"]:
    """A feed (RSS, Atom, JSON Feed) or a page, from its media type and its first bytes."""
    head = fetched.content[:4096].lstrip()
    if _FEED_ROOT.match(head):
        return "feed"
    media = fetched.content_type
    if media == "application/feed+json" or head.startswith(b"{"):
        return "feed" if _is_json_feed(fetched.content) else "page"
    if media in _XML_TYPES and not head.lower().startswith((b"<!doctype html", b"<html")):
        return "feed"
    return "page"


def _is_json_feed(content: bytes) -> bool:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and (
        "jsonfeed.org" in str(document.get("version", ""))
        or isinstance(document.get("items"), list)
    )


def feed_links(root: lxml.html.HtmlElement, page_url: str) -> list[FeedLink]:
    """The feeds a page names in ``<link rel="alternate">``, the most specific first.

    Links are absolute (``parse_page`` resolves them). Comment feeds are left out. A feed
    whose path lies under the page's own path (a category's feed on a category page) comes
    before the site's general feed; otherwise the page's order is kept.
    """
    found: list[FeedLink] = []
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        media = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" not in rel or media not in _FEED_TYPES or not href:
            continue
        url = urljoin(page_url, href)
        title = " ".join((link.get("title") or "").split())
        if media == "application/json" and "feed" not in f"{title} {url}".lower():
            continue  # a JSON API (WordPress's wp-json), not a JSON Feed
        if urlsplit(url).scheme not in ("http", "https") or _COMMENTS.search(f"{title} {url}"):
            continue
        if url not in {f.url for f in found}:
            found.append(FeedLink(url, _FEED_TYPES[media], title))
    page_path = urlsplit(page_url).path
    return sorted(found, key=lambda f: -_shared_path(urlsplit(f.url).path, page_path))


def _shared_path(one: str, other: str) -> int:
    """How many leading path segments two paths share."""
    count = 0
    for a, b in zip(one.strip("/").split("/"), other.strip("/").split("/"), strict=False):
        if a != b or not a:
            break
        count += 1
    return count


def guessed_feeds(root: lxml.html.HtmlElement, page_url: str) -> list[FeedLink]:
    """At most MAX_GUESSES addresses where the page's CMS usually publishes its feed."""
    generator = " ".join(
        meta.get("content", "")
        for meta in root.iter("meta")
        if (meta.get("name") or "").lower() == "generator"
    )
    generator = generator.lower()
    assets = " ".join(
        el.get("src") or el.get("href") or "" for el in root.iter("script", "link", "img")
    ).lower()
    paths = next(
        (cms_paths for name, _, cms_paths in _CMS_FEEDS if name in generator),
        None,
    ) or next(
        (cms_paths for _, asset, cms_paths in _CMS_FEEDS if asset and asset in assets),
        _GENERIC_FEEDS,
    )
    split = urlsplit(page_url)
    site = urlunsplit((split.scheme, split.netloc, "/", "", ""))
    page = urlunsplit((split.scheme, split.netloc, split.path or "/", "", ""))
    guesses: list[FeedLink] = []
    for path in paths:
        if path.startswith("?"):
            url = page + path
        elif path.startswith("/"):
            url = urljoin(site, path)
        else:  # relative to the page's folder, as WordPress category feeds are
            url = urljoin(page if page.endswith("/") else page + "/", path)
        if url != page_url and url not in {g.url for g in guesses}:
            guesses.append(FeedLink(url, "", linked=False))
    return guesses[:MAX_GUESSES]


def page_title(root: lxml.html.HtmlElement) -> str:
    """The page's own title, or its first heading's."""
    for path in (".//head/title", ".//h1"):
        found = root.find(path)
        if found is not None:
            text = " ".join(found.text_content().split())
            if text:
                return text
    return ""
