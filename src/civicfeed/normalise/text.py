"""Titles, links and summaries made clean and safe for a feed."""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlsplit

import nh3

from ..urls import http_netloc, urljoin
from ..xmlsafe import strip_controls

__all__ = [
    "DERIVED_TITLE",
    "MAX_SUMMARY",
    "MAX_TITLE",
    "absolute_link",
    "clean_text",
    "derive_title",
    "sanitise_html",
]

MAX_TITLE = 300
MAX_SUMMARY = 64_000
_SPACE = re.compile(r"[\s\u2028\u2029]+")
# invisible in a title and never meant to be seen: soft hyphen, zero-width space, word joiner,
# zero-width no-break space (joiners ZWJ / ZWNJ stay: they shape emoji and scripts)
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")
_SAFE_SCHEMES = {"http", "https", "mailto"}
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "noscript",
    "template",
    "textarea",
    "select",
    "svg",
    "math",
}
_TAGS = nh3.ALLOWED_TAGS - _DROP_WITH_CONTENT - {"map", "area", "nav"}


def clean_text(text: str, limit: int = MAX_TITLE) -> tuple[str, bool]:
    """Controls and invisible characters removed, white space collapsed; (text, was it cut).

    ``text`` is text already (the extractors decode markup and character references once):
    a literal "&amp;" in it stays as written."""
    text = text[: limit * 8]
    text = strip_controls(text)
    if not text.isascii():  # ASCII is in NFC and has none of the invisible characters
        text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text, False
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip() + "…", True


def absolute_link(link: str | None, base: str) -> str | None:
    """An absolute http(s) link, query kept exactly; None for anything else."""
    if not link:
        return None
    link = strip_controls(link).strip()
    try:
        absolute = urljoin(base, link)
    except ValueError:
        return None
    netloc = http_netloc(absolute)
    if netloc is not None:  # most links: whether it is usable depends on its host part only
        return absolute if _requestable_netloc(netloc) else None
    try:
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"}:
        return None
    return absolute if _requestable(parts) else None


@lru_cache(maxsize=1024)
def _requestable_netloc(netloc: str) -> bool:
    # cached: the links of a document mostly share a host or a few
    return _requestable(urlsplit(f"http://{netloc}"))


def _requestable(parts: SplitResult) -> bool:
    """Whether a request could be made to the URL at all: a host that is a valid name (IDNA,
    so not ``xn--``), a port in range. Anything else is no link."""
    try:
        parts.port  # noqa: B018 - raises for a port out of range
        host = parts.hostname
    except ValueError:
        return False
    return _valid_host(host)


@lru_cache(maxsize=4096)
def _valid_host(host: str | None) -> bool:
    # cached: the links of a document mostly share a host or a few
    if not host or any(c.isspace() for c in host):
        return False
    if host.startswith("[") or ":" in host:  # an IPv6 literal: urlsplit checked it
        return True
    try:
        host.encode("idna").decode("idna")
    except (ValueError, UnicodeError):
        return False
    return True


def sanitise_html(fragment: str | None, base: str) -> tuple[str, bool]:
    """Allow-listed HTML with absolute links; (html, was it cut)."""
    if not fragment:
        return "", False
    cut = len(fragment) > MAX_SUMMARY
    fragment = strip_controls(fragment[:MAX_SUMMARY])
    if "<" not in fragment and "&" not in fragment:  # text: nothing to parse
        return _as_sanitised(fragment).strip(), cut
    return _clean(fragment, base).strip(), cut


def _clean(fragment: str, base: str) -> str:
    return _cleaner(base).clean(fragment)


@lru_cache(maxsize=8)
def _cleaner(base: str) -> nh3.Cleaner:
    """The sanitiser for the summaries of one document: nh3.clean builds one from its
    arguments on every call (three times the work of cleaning a summary); the links of a
    document's summaries are all resolved against its address (a worker reads one document
    at a time, and each sanitiser holds about 10 KB). ValueError (not cached) for a base nh3
    cannot resolve against, as from nh3.clean."""
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        url_schemes=_SAFE_SCHEMES,
        url_relative=("rewrite_with_base", base),
    )


_SERIALISED = str.maketrans({">": "&gt;", "\xa0": "&nbsp;"})


def _as_sanitised(text: str) -> str:
    """Text without markup or references as the sanitiser gives it back: line ends as HTML
    reads them, '>' and no-break spaces as references (html5ever's serialiser)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_SERIALISED)


DERIVED_TITLE = 100  # characters at most in a title made from a summary
_BLOCK = re.compile(r"<(/?)(p|div|br|li|ul|ol|h[1-6]|tr|td|th|blockquote|section|article)\b", re.I)
# a sentence ends at . ! ? … before a capital or the end, not after a short word ("Dr.")
_SENTENCE_END = re.compile(r"(?<=\w{4})[.!?…](?=\s+[^\W\d_a-zäöüß]|$)|(?<=\w)[!?…](?=\s|$)")
_MIN_SENTENCE = 20  # a first sentence shorter than this goes on to the next


@lru_cache(maxsize=1)
def _text_only() -> nh3.Cleaner:
    return nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT)


def derive_title(summary_html: str | None, link: str | None) -> str:
    """A title for an item that has none: the first sentence of its summary as text, cut at
    a word boundary at DERIVED_TITLE characters; without a summary, its link; else ""."""
    text = ""
    if summary_html:
        spaced = _BLOCK.sub(r" <\1\2", summary_html[:MAX_SUMMARY])
        plain = _text_only().clean(spaced)
        text = _SPACE.sub(" ", html.unescape(plain)).strip()
        text, _ = clean_text(text, limit=MAX_SUMMARY)
        for end in _SENTENCE_END.finditer(text):
            if end.end() >= _MIN_SENTENCE:
                text = text[: end.end()]
                break
    if not text and link:  # its path, else its host
        parts = urlsplit(link)
        text = unquote(parts.path).strip("/") or parts.hostname or link
    if len(text) <= DERIVED_TITLE:
        return text
    head = text[: DERIVED_TITLE - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,;:-–") + "…"
