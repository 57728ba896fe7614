"""civicfeed.urls.urljoin against urllib.parse.urljoin: the same result, or the same error,
for generated links and bases and for every link written in the test corpora."""

from __future__ import annotations

import html
import json
import os
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed import urls
from civicfeed.normalise import text
from civicfeed.urls import http_netloc, urljoin
from civicfeed.xmlsafe import strip_controls

HERE = Path(__file__).parent

BASES = [
    "https://www.example-city.gov/news/",
    "https://www.example-city.gov/news/index.html?page=2#top",
    "http://127.0.0.1:8000/s12/",
    "http://127.0.0.1/s1.rss",
    "https://corpus.example/feeds/sub/dir/feed.xml?q=1",
    "https://h.example",
    "https://h.example/a/b;p=1?q#f",
    "http://user:pw@h.example:81/a/./b/../c",
    "HTTP://H.EXAMPLE/Upper/",
    "https://h.example//double//slash/",
    "https://h.example/a?",
    "https://h.example/a#",
    "http://[::1]:8000/x/",
    "http://[::1/x",
    "http://bücher.example/x/y",
    "ftp://ftp.example/pub/",
    "file:///tmp/x.html",
    "mailto:someone@example.org",
    "/s12/",
    "s12/page",
    "?q",
    "//h.example/x",
    " https://h.example/space/",
    "http:relative/x",
    "",
]

# the pieces links are made of, the unusual ones included
_PIECES = [
    "http://",
    "https://",
    "HTTPS://",
    "ftp://",
    "mailto:",
    "javascript:",
    "//",
    "/",
    "/",
    "..",
    ".",
    "./",
    "../",
    "?",
    "#",
    ";",
    ":",
    "=",
    "&",
    "@",
    "%41",
    "%",
    "h.example",
    "127.0.0.1:8000",
    ":99999",
    ":0",
    ":x",
    "xn--",
    "user:pw@",
    "a",
    "B",
    "1",
    "-",
    "_",
    "~",
    "+",
    " ",
    "\t",
    "\n",
    "\x00",
    "\x7f",
    "[",
    "]",
    "[::1]",
    "\\",
    "ü",
    "ℌ",
    "\xa0",
    "\u2028",
]
links = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join) | st.text(max_size=20)
bases = st.sampled_from(BASES) | st.builds(
    "".join, st.lists(st.sampled_from(_PIECES), max_size=10).map(lambda p: ["http://h", *p])
)


def _outcome(join: object, base: str, link: str) -> tuple[str, str]:
    try:
        return "value", join(base, link)  # type: ignore[operator]
    except ValueError as exc:
        return "ValueError", str(exc)


def _same(base: str, link: str) -> None:
    from urllib.parse import urljoin as stdlib_urljoin

    assert _outcome(urljoin, base, link) == _outcome(stdlib_urljoin, base, link), (base, link)


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000")), deadline=None)
@given(bases, links)
@example("https://h.example/a/b", "../../../x")
@example("https://h.example/a/b", "./")
@example("https://h.example/a/b", "..")
@example("https://h.example/a/b;p?q", "")
@example("https://h.example/a/b;p?q", "#f")
@example("https://h.example/a/b;p?q", "?")
@example("https://h.example/a", "http://h.example/b?#")
@example("/s12/", "../programm-1.html")
def test_generated_links_join_as_urllib_joins_them(base: str, link: str) -> None:
    _same(base, link)


_ATTRIBUTE = re.compile(
    r"""(?:href|src|action|about|url|uri)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I
)
_ELEMENT = re.compile(r"<(?:link|guid|id|comments|loc)\b[^>]*>([^<]*)</", re.I)


@cache
def _corpus_links() -> list[tuple[str, str]]:
    """(the document's address, a link as its parser reads it) for every link the corpora hold."""
    found: list[tuple[str, str]] = []
    documents: list[tuple[str, Path]] = []
    for path in sorted((HERE / "cases" / "extract").glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        documents.append((case["url"], HERE / "fixtures" / case["input"]))
    for path in sorted((HERE / "cases" / "listings").glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        documents.append((case["url"], path.with_suffix(".html")))
    for path in sorted((HERE / "corpus" / "feeds").iterdir()):
        if not path.name.endswith((".json", ".md")):
            documents.append((f"https://corpus.example/feeds/{path.name}", path))
    for address, path in documents:
        text = path.read_bytes().decode("utf-8", "replace")
        for match in _ATTRIBUTE.finditer(text):
            found.append((address, html.unescape(match.group(1) or match.group(2) or "")))
        for match in _ELEMENT.finditer(text):
            found.append((address, html.unescape(match.group(1))))
    return found


def test_the_corpora_hold_links_of_every_kind() -> None:
    written = [link for _, link in _corpus_links()]
    assert len(written) > 10_000
    assert any(link.startswith("https://") for link in written)
    assert any(link.startswith("/") and not link.startswith("//") for link in written)
    assert any(link.startswith("../") for link in written)
    assert any(link.startswith("//") for link in written)


@pytest.mark.parametrize("base", ["", *BASES[:6], "/s12/", "http://[::1]:8000/x/"])
def test_corpus_links_join_as_urllib_joins_them(base: str) -> None:
    for address, link in _corpus_links():
        for value in {link, link.strip(), "&amp;".join(link.split("&"))}:
            _same(base or address, value)


def test_most_corpus_links_take_the_fast_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken, not just correct: urllib sees only the unusual links."""
    calls: list[str] = []
    stdlib = urls._urljoin
    monkeypatch.setattr(urls, "_urljoin", lambda b, u: calls.append(u) or stdlib(b, u))
    written = [(address, link.strip()) for address, link in _corpus_links()]
    for address, link in written:
        urljoin(address, link)
    assert len(calls) < len(written) / 10


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "500")), deadline=None)
@given(bases, links)
@example("https://h.example/a", "http:////x.example/y")
@example("https://h.example/a", "a+b://///x")
def test_the_feed_path_joins_as_feedparser_joins(base: str, link: str) -> None:
    import feedparser.urls

    from civicfeed.extract import fastfeed

    assert fastfeed._urljoin(base, link) == feedparser.urls._urljoin(base, link)


def _absolute_link_by_urllib(link: str | None, base: str) -> str | None:
    """normalise.text.absolute_link as it was written with urllib alone."""
    from urllib.parse import urljoin as stdlib_urljoin
    from urllib.parse import urlsplit

    if not link:
        return None
    link = strip_controls(link).strip()
    try:
        absolute = stdlib_urljoin(base, link)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"}:
        return None
    return absolute if text._requestable(parts) else None


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000")), deadline=None)
@given(bases, links)
@example("https://h.example/", "http://h.example:99999/x")
@example("https://h.example/", "http://xn--/x")
@example("https://h.example/", "http://user@:80/x")
@example("https://h.example/", "https://bücher.example/x")
def test_normalised_links_are_those_urllib_gives(base: str, link: str) -> None:
    assert text.absolute_link(link, base) == _absolute_link_by_urllib(link, base)
    netloc = http_netloc(link)
    if netloc is not None:
        from urllib.parse import urlsplit

        assert (urlsplit(link).scheme, urlsplit(link).netloc) in {
            ("http", netloc),
            ("https", netloc),
        }


def test_corpus_links_are_normalised_as_urllib_gives_them() -> None:
    for address, link in _corpus_links():
        assert text.absolute_link(link, address) == _absolute_link_by_urllib(link, address)
