"""The fetcher's reading of an address (fetch._address) against httpx's: the same address
reported, the same request target, Host header, host name and port, or a FetchError where
httpx refuses it; for generated addresses and for every absolute link of the test corpora."""

from __future__ import annotations

import os

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed import fetch
from civicfeed.errors import FetchError
from test_urls import _corpus_links

_PIECES = [
    "/",
    "/",
    "a",
    "B",
    "1",
    "0",
    "-",
    ".",
    "..",
    "./",
    "../",
    "_",
    "~",
    "?",
    "?",
    "#",
    "&",
    "=",
    ";",
    ":",
    "@",
    "+",
    "!",
    "$",
    "'",
    "(",
    "*",
    ",",
    "%41",
    "%2f",
    "%",
    "%zz",
    " ",
    "|",
    "\\",
    '"',
    "<",
    "{",
    "^",
    "`",
    "[",
    "]",
    "ü",
    "\x7f",
    "\t",
]
_HOSTS = [
    "h.example",
    "H.Example",
    "127.0.0.1",
    "127.0.0.64",
    "999.1.1.1",
    "127.1",
    "2130706433",
    "[::1]",
    "xn--mnchen-3ya.de",
    "münchen.de",
    "a-b.example",
    "-a.example",
    "a..example",
    "a.example.",
    "user:pw@h.example",
    "",
]
_PORTS = ["", ":80", ":443", ":8080", ":080", ":0", ":65535", ":65536", ":99999", ":", ":x"]

addresses = st.builds(
    lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.sampled_from(_HOSTS),
    st.sampled_from(_PORTS),
    st.lists(st.sampled_from(_PIECES), max_size=12).map("".join),
)


def _as_httpx_reads_it(url: str) -> tuple[object, ...]:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return ("refused",)
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return ("refused",)
    try:
        host = parsed.host.lower()  # an IDN's labels decoded: idna's errors are UnicodeErrors
    except UnicodeError:
        return ("refused",)
    return (
        str(parsed),
        parsed.scheme,
        host,
        parsed.raw_host.decode("ascii"),
        parsed.port or {"http": 80, "https": 443}[parsed.scheme],
        parsed.netloc,
        parsed.raw_path,
        parsed.fragment,
    )


def _as_read(url: str) -> tuple[object, ...]:
    try:
        return tuple(fetch._address(url))
    except FetchError:
        return ("refused",)


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000")), deadline=None)
@given(addresses)
@example("http://127.0.0.1:8000/s12/feed.rss")
@example("https://h.example")
@example("https://h.example?q=1")
@example("https://h.example/a?")
@example("https://h.example/a/./b/../c")
@example("https://h.example/.well-known/x")
@example("https://h.example/a%2Fb%zz")
@example("http://h.example:80/")
@example("http://127.0.0.256/")
@example("http://127.0.0.1111/")
@example("http://xn--mnchen-3ya.de-/")
def test_addresses_are_read_as_httpx_reads_them(url: str) -> None:
    assert _as_read(url) == _as_httpx_reads_it(url), url


def test_corpus_links_are_read_as_httpx_reads_them() -> None:
    absolute = {link.strip() for _, link in _corpus_links() if link.strip().startswith("http")}
    assert len(absolute) > 1000
    for url in absolute:
        assert _as_read(url) == _as_httpx_reads_it(url), url


def test_most_corpus_links_take_the_plain_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain reading is taken, not just correct: httpx reads only the unusual links."""
    calls: list[str] = []
    by_httpx = fetch._address_by_httpx
    monkeypatch.setattr(fetch, "_address_by_httpx", lambda u: calls.append(u) or by_httpx(u))
    absolute = {link.strip() for _, link in _corpus_links() if link.strip().startswith("http")}
    for url in absolute:
        _as_read(url)
    assert len(calls) < len(absolute) / 5
    assert fetch._address("http://127.0.0.12:8080/s1.rss").target == b"/s1.rss"
    assert calls.count("http://127.0.0.12:8080/s1.rss") == 0
