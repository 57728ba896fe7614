"""Fetch: HTTP/1.1 with h11 on asyncio's transports, politely and within bounds. h11 and httpx
(which reads the rare address that is not plain) are used only here.

One connection pool per host, on asyncio's transports; at most ``concurrency`` requests in
all and ``per_host`` per host; redirects followed, every hop checked; conditional requests;
a deadline for the whole request including retries, which starts when the request gets its
connection slot (time spent in civicfeed's own queue does not count); the body streamed and
cut at ``max_bytes``, counted on the wire and again after decoding its one Content-Encoding
layer, chunk by chunk; retries with exponential backoff and jitter for connection errors,
timeouts, 429 and 5xx, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import re
import socket
import ssl
import time
import zlib
from collections import Counter, OrderedDict, defaultdict
from collections.abc import AsyncIterable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, suppress
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

import h11

from . import __version__
from .errors import FetchError
from .models import Fetched, Validators
from .netpolicy import MAX_REDIRECTS, address_refusal, scheme_refusal

if TYPE_CHECKING:
    from http.cookiejar import CookieJar

__all__ = ["Fetcher", "HostSlots", "user_agent"]

# a request's slot on its host shared with other processes: (host, seconds the request may
# take) -> held while the request is under way (see workers.py: leases in the database)
HostSlots = Callable[[str, float], AbstractAsyncContextManager[None]]

_RETRY_STATUS = {429, 500, 502, 503, 504}
_BINARY_TYPES = (
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/msword",
    "application/vnd.",
    "application/x-tar",
    "application/x-7z",
)
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.9, application/xhtml+xml;q=0.9,"
    " */*;q=0.5"
)


def user_agent(contact: str | None = None) -> str:
    extra = f"; +{contact}" if contact else ""
    return f"civicfeed/{__version__} (feed generator{extra})"


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None, *, kind: str = "fetch") -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.kind = kind


class Fetcher:
    """Use as ``async with Fetcher(...) as fetcher: await fetcher.fetch(url, ...)``."""

    def __init__(
        self,
        *,
        concurrency: int = 128,
        per_host: int = 2,
        retries: int = 2,
        backoff: float = 0.5,
        agent: str | None = None,
        trusted: Iterable[str] = (),
        host_slots: HostSlots | None = None,
    ) -> None:
        """``trusted``: the hosts the operator named (see netpolicy.py); any other host is
        connected to only when it resolves to public addresses. ``host_slots``: besides this
        process's ``per_host`` limit, a slot shared with other processes that each request
        holds while it is under way (the per-host limit across workers)."""
        self._host_slots = host_slots
        self._limit = asyncio.Semaphore(concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_host)
        )
        self._retries = retries
        self._backoff = backoff
        # one connection pool per host (see _Pools): connections stay open between a host's
        # turns, and placing a request looks at that host's few connections only
        self._pools = _Pools(concurrency=concurrency, per_host=per_host)
        self._guard = _Guard(trusted)
        self._cookies = _Cookies()
        # after Host, in the order httpx sent them
        self._headers = [
            (b"Accept", _ACCEPT.encode("ascii")),
            (b"Accept-Encoding", b"gzip, deflate"),  # the encodings _decoder reads
            (b"Connection", b"keep-alive"),
            (b"User-Agent", _header_bytes(agent or user_agent())),
        ]

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._pools.aclose()

    async def fetch(
        self,
        url: str,
        *,
        timeout: float = 20.0,
        max_bytes: int = 10_000_000,
        validators: Validators | None = None,
        deadline: float | None = None,
        stay_on: Callable[[str], bool] | None = None,
    ) -> Fetched:
        """GET ``url``; a 304 comes back as Fetched(status=304). FetchError on failure.

        ``timeout`` starts when the request gets its connection slot, so that a long queue
        never fails a source; ``Fetched.elapsed`` says how long it took from there.
        ``deadline`` (a ``time.monotonic()`` value) is a hard end for a request that belongs
        to a source already under way, such as a detail page: its wait for a slot counts too.
        ``stay_on``: the URLs it may request; a redirect elsewhere is not followed.
        """
        refused = scheme_refusal(url)
        if refused:
            raise FetchError(refused, kind="refused")
        token = _STAY_ON.set(stay_on)
        try:
            return await self._fetch(url, timeout, max_bytes, validators, deadline)
        finally:
            _STAY_ON.reset(token)

    async def _fetch(
        self,
        url: str,
        timeout: float,
        max_bytes: int,
        validators: Validators | None,
        deadline: float | None,
    ) -> Fetched:
        host = urlsplit(url).hostname or ""
        started: float | None = None
        attempt = 0
        while True:
            try:
                # one bound for the whole attempt, in this task (no task of its own per
                # request): the deadline while waiting for a slot, then the request's end
                async with asyncio.timeout_at(deadline) as bound:
                    if self._host_slots is None:
                        async with self._limit, self._hosts[host]:
                            if started is None:
                                started = time.monotonic()
                            return await self._attempt(
                                bound, url, started, timeout, max_bytes, validators, deadline
                            )
                    async with self._hosts[host], self._host_slots(host, timeout), self._limit:
                        if started is None:
                            started = time.monotonic()
                        return await self._attempt(
                            bound, url, started, timeout, max_bytes, validators, deadline
                        )
            except TimeoutError:
                reason, after = f"timed out after {timeout:g}s waiting for {host}", None
                error: FetchError = FetchError(reason, kind="timeout")
            except _Retry as retry:
                reason, after = retry.reason, retry.after
                error = FetchError(retry.reason, kind=retry.kind)
            attempt += 1
            pause = after if after is not None else self._pause(attempt)
            end = _end(started, timeout, deadline) if started is not None else time.monotonic()
            if attempt > self._retries or time.monotonic() + pause >= end:
                if attempt > 1:
                    raise FetchError(
                        f"{reason} (after {attempt} attempts)", kind=error.kind
                    ) from error
                raise error
            await asyncio.sleep(pause)

    async def _attempt(
        self,
        bound: asyncio.Timeout,
        url: str,
        started: float,
        timeout: float,
        max_bytes: int,
        validators: Validators | None,
        deadline: float | None,
    ) -> Fetched:
        """One attempt, once the request has its turn: a place among ``concurrency`` and
        among the host's ``per_host``; with shared host slots, the host's turn first (this
        process's, then the shared one), so that no place among ``concurrency`` is held
        while waiting for a busy host (see _fetch)."""
        end = _end(started, timeout, deadline)
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        bound.reschedule(asyncio.get_running_loop().time() + remaining)
        return await self._once(url, remaining, max_bytes, validators, started)

    async def notify_hub(self, hub: str, topics: list[str], *, timeout: float = 10.0) -> None:
        """Tell a WebSub hub that these feed URLs changed (hub.mode=publish)."""
        limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        for topic in topics:
            body = urlencode({"hub.mode": "publish", "hub.url": topic}).encode("ascii")
            form = [
                (b"Content-Length", str(len(body)).encode("ascii")),
                (b"Content-Type", b"application/x-www-form-urlencoded"),
            ]
            try:
                answer = await self._exchange("POST", hub, form, body, limits)
                await answer.aclose()
            except _NETWORK_ERRORS as exc:
                raise FetchError(f"WebSub hub {hub}: {_describe(exc, hub)}", kind="hub") from exc
            except (_TooMany, _Loop, _OffSite) as exc:
                raise FetchError(f"WebSub hub {hub}: {_redirect_error(exc)}", kind="hub") from exc
            if not 200 <= answer.status < 300:
                raise FetchError(f"WebSub hub {hub}: HTTP {answer.status} for {topic}", kind="hub")

    def _pause(self, attempt: int) -> float:
        base: float = self._backoff * 2 ** (attempt - 1)
        return base + random.uniform(0, base)

    async def _once(
        self,
        url: str,
        timeout: float,
        max_bytes: int,
        validators: Validators | None,
        started: float,
    ) -> Fetched:
        headers: list[tuple[bytes, bytes]] = []
        if validators is not None:
            if validators.etag:
                headers.append((b"If-None-Match", _header_bytes(validators.etag)))
            if validators.last_modified:
                headers.append((b"If-Modified-Since", _header_bytes(validators.last_modified)))
        limits = {"connect": min(timeout, 10.0), "read": timeout, "write": timeout, "pool": timeout}
        try:
            answer = await self._exchange("GET", url, headers, None, limits)
            try:
                return await self._read(answer, max_bytes, started)
            finally:
                await answer.aclose()
        except TimeoutException as exc:
            host = urlsplit(url).hostname or url
            raise _Retry(
                f"timed out ({_TIMEOUTS.get(type(exc), 'no answer')}) waiting for {host}",
                kind="timeout",
            ) from exc
        except UnsupportedProtocol as exc:
            raise FetchError(_describe(exc, url), kind=_kind(exc)) from exc
        except _NETWORK_ERRORS as exc:
            raise _Retry(_describe(exc, url), kind=_kind(exc)) from exc
        except (_TooMany, _Loop, _OffSite) as exc:
            raise FetchError(_redirect_error(exc), kind="redirects") from exc

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        timeouts: dict[str, float],
    ) -> _Answer:
        """``method`` ``url`` and the redirects it leads to, at most MAX_REDIRECTS, every hop
        checked before it connects (``stay_on``, the scheme, the network policy); the last
        answer, its body unread: the caller closes it."""
        address = _address(url)
        chain: list[str] = []
        asked: set[tuple[str, str, str | None]] = set()
        while True:
            allowed = _STAY_ON.get()
            if allowed is not None and not allowed(address.text):
                raise _OffSite(address.text)
            cookie = self._cookies.header(address, method)
            chain.append(address.text)
            if (address.text, method, cookie) in asked:  # the same request once more
                raise _Loop(chain)
            asked.add((address.text, method, cookie))
            place = await self._guard.place(address)
            sent = [(b"Host", address.authority), *self._headers, *headers]
            if cookie is not None:
                sent.append((b"Cookie", _header_bytes(cookie)))
            response = await self._pools.open(address, place, method, sent, body, timeouts)
            answer = _Answer(address, response)
            try:
                self._cookies.keep(answer, method)
                location = answer.headers.get("location") if answer.status in _REDIRECTS else None
                if location is None:
                    return answer
                address = await self._redirect(answer, location, len(chain))
            except BaseException:
                await answer.aclose()
                raise
            await answer.aclose()
            redirected = _redirect_method(answer.status, method)
            if redirected != method and redirected == "GET":
                body = None
                headers = [
                    (k, v) for k, v in headers if k not in (b"Content-Length", b"Content-Type")
                ]
            method = redirected

    async def _redirect(self, answer: _Answer, location: str, hops: int) -> _Address:
        """Where a redirect leads (refused before anything is asked of it), its body read
        (a small one: its connection is then kept)."""
        target = _redirect_target(answer.address, location.strip())
        refused = scheme_refusal(target, redirect=True)
        if refused:
            raise FetchError(refused, kind="refused")
        try:
            address = _address(target)
        except FetchError as exc:
            raise RemoteProtocolError(f"Invalid URL in location header: {exc}") from exc
        if hops > MAX_REDIRECTS:
            raise _TooMany
        read = 0
        async for chunk in answer.stream:
            read += len(chunk)
            if read > _REDIRECT_BODY:
                break
        return address

    async def _read(self, answer: _Answer, max_bytes: int, started: float) -> Fetched:
        status = answer.status
        fields = answer.headers
        if status in _RETRY_STATUS:
            raise _Retry(
                f"HTTP {status} {answer.reason}".strip() + f" from {answer.address.host}",
                _retry_after(fields.get("retry-after")),
                kind="http",
            )
        headers = MappingProxyType(fields)
        validators = Validators(fields.get("etag"), fields.get("last-modified"))
        final = answer.address.text
        if status == 304:
            # read to its end (it has no body): only then does the connection go back to the
            # pool; left unread, it was closed and every 304 cost a new connection
            async for _ in answer.stream:
                pass
            return Fetched(
                final, status, headers, b"", validators, elapsed=time.monotonic() - started
            )
        if not 200 <= status < 300:
            raise FetchError(
                f"HTTP {status} {answer.reason}".strip() + f" from {answer.address.host}",
                kind="http",
            )
        media = fields.get("content-type", "").split(";")[0].strip().lower()
        if media.startswith(_BINARY_TYPES):
            raise FetchError(
                f"the response is {media}, neither an HTML page nor a feed", kind="type"
            )
        declared = fields.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        decoder = _decoder(fields.get("content-encoding", ""))
        body = bytearray()
        wire = 0
        async for chunk in answer.stream:
            wire += len(chunk)
            if wire > max_bytes:
                raise _too_large(max_bytes)
            # at most one byte more than the room left is decoded: a bomb stops here
            body += decoder.decode(chunk, max_bytes - len(body) + 1)
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
        body += decoder.flush(max_bytes - len(body) + 1)
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        return Fetched(
            final, status, headers, bytes(body), validators, elapsed=time.monotonic() - started
        )


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(
        f"the response is larger than max_bytes ({max_bytes} bytes)", kind="too-large"
    )


def _end(started: float, timeout: float, deadline: float | None) -> float:
    end = started + timeout
    return end if deadline is None else min(end, deadline)


class _Identity:
    def decode(self, chunk: bytes, limit: int) -> bytes:
        return chunk

    def flush(self, limit: int) -> bytes:
        return b""


class _Inflate:
    """gzip or deflate, decoded with a bound on the output of every step."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._first = True

    def decode(self, chunk: bytes, limit: int) -> bytes:
        data = self._zlib.unconsumed_tail + chunk
        try:
            return self._zlib.decompress(data, limit)
        except zlib.error as exc:
            if self._first and not self._gzip:  # "deflate" sent as a raw stream, as some do
                self._first = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(chunk, limit)
            raise FetchError(
                f"the response cannot be decompressed: {exc}", kind="protocol"
            ) from exc
        finally:
            self._first = False

    def flush(self, limit: int) -> bytes:
        # input is left over only when a step hit its limit, and then the body is too large
        return self._zlib.decompress(self._zlib.unconsumed_tail, limit) or self._zlib.flush()


def _decoder(header: str) -> _Identity | _Inflate:
    """The decoder of a response's Content-Encoding; more than one layer is refused."""
    layers = [e.strip().lower() for e in header.split(",") if e.strip()]
    layers = [e for e in layers if e != "identity"]
    if len(layers) > 1:
        raise FetchError(
            f"the response is compressed more than once (Content-Encoding: {header.strip()}); "
            "refused",
            kind="too-large",
        )
    if not layers:
        return _Identity()
    if layers[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(
            f"the response uses Content-Encoding {layers[0]!r}, which is not read", kind="type"
        )
    return _Inflate(layers[0])


# --- requests: addresses, redirects, the network policy, cookies, pools --------------------
# No HTTP client library around the connections: httpx's client cost more CPU per 304 than
# the request itself (its request and response objects, URL parsing, header merging, hooks),
# and httpcore's pool under it as much again (see _Pools). What the client did that matters
# here is done below: the address as httpx shows it, the redirects it followed, cookies, and
# the checks of every hop.

# what the current request may reach (see ``stay_on``); every hop of a redirect is checked
_STAY_ON: ContextVar[Callable[[str], bool] | None] = ContextVar("stay_on", default=None)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# the most of a redirect's body that is read so that its connection can be used again
_REDIRECT_BODY = 64 * 1024

# An address whose every character is one httpx leaves as it is: a lower-case scheme and
# host, a port that is not the scheme's own, a path without dot segments and a query that is
# not empty, no fragment. Anything else is read by httpx's own parser (see _address), so
# that the address reported (Fetched.url, the base of a page's links) and the request sent
# are what they were when httpx made the requests. tests/test_fetch_addresses.py compares
# both.
_PLAIN = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9][0-9]{0,4}))?"
    r"((?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*)(?:\?([A-Za-z0-9._~!$&'()*+,;=:@/?%-]+))?\Z"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\Z)")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")  # httpx: IPv4_STYLE_HOSTNAME


class _Address(NamedTuple):
    """A request's address, as sent and as reported."""

    text: str  # as httpx shows it: Fetched.url, what ``stay_on`` is asked about
    scheme: str
    host: str  # lower case, as the trusted hosts are written (an IDN in Unicode)
    name: str  # the host as it is looked up and named to the server (ASCII)
    port: int
    authority: bytes  # the Host header
    target: bytes  # path and query
    fragment: str


def _address(url: str) -> _Address:
    """``url`` read as httpx reads it; FetchError if it cannot be requested."""
    plain = _PLAIN.match(url)
    if plain is not None:
        scheme, host, port, path, query = plain.groups()
        if (
            (port is None or int(port) not in (_DEFAULT_PORTS[scheme], 0))
            and (port is None or int(port) <= 65535)
            and not ("/." in path and _DOT_SEGMENT.search(path))
            and "%" not in url
            and not host.startswith("xn--")
            and ".xn--" not in host
            and not (_IPV4.match(host) and not _valid_ipv4(host))
        ):
            authority = host if port is None else f"{host}:{port}"
            target = (path or "/") if query is None else f"{path or '/'}?{query}"
            return _Address(
                url,
                scheme,
                host,
                host,
                int(port) if port else _DEFAULT_PORTS[scheme],
                authority.encode("ascii"),
                target.encode("ascii"),
                "",
            )
    return _address_by_httpx(url)


def _valid_ipv4(host: str) -> bool:
    return all(int(part) <= 255 for part in host.split("."))


def _address_by_httpx(url: str) -> _Address:
    import httpx  # only for the addresses the plain form above does not cover

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"not a valid address: {url[:200]} ({exc})", kind="fetch") from exc
    scheme = parsed.scheme
    if scheme not in _DEFAULT_PORTS or not parsed.raw_host:
        raise FetchError(f"not an http(s) address: {url}", kind="fetch")
    try:
        host = parsed.host.lower()  # an IDN's labels decoded, and checked
    except UnicodeError as exc:
        raise FetchError(f"not a valid address: {url[:200]} ({exc})", kind="fetch") from exc
    return _Address(
        str(parsed),
        scheme,
        host,
        parsed.raw_host.decode("ascii"),
        parsed.port or _DEFAULT_PORTS[scheme],
        parsed.netloc,
        parsed.raw_path,
        parsed.fragment,
    )


def _redirect_target(current: _Address, location: str) -> str:
    """Where a redirect leads: ``location`` resolved against the current address, with the
    current fragment when it has none of its own (RFC 9110, as httpx did)."""
    try:
        joined = urljoin(current.text, location)
    except ValueError as exc:
        raise RemoteProtocolError(f"Invalid URL in location header: {exc}") from exc
    if current.fragment and "#" not in joined:
        joined = f"{joined}#{current.fragment}"
    return joined


def _redirect_method(status: int, method: str) -> str:
    """The method of the request a redirect asks for (as browsers and httpx do)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


class _OffSite(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _Loop(Exception):
    def __init__(self, urls: list[str]) -> None:
        super().__init__(urls)
        self.urls = urls


class _TooMany(Exception):
    pass


class _Answer:
    """A response's status, its headers decoded as httpx decodes them (ASCII, else UTF-8,
    else Latin-1; a name given more than once has its values joined by ", "), and its
    body still to be read from ``stream``."""

    __slots__ = ("_response", "address", "headers", "raw", "reason", "status", "stream")

    def __init__(self, address: _Address, response: _Response) -> None:
        self.address = address
        self._response = response
        self.status = response.status
        self.raw = response.headers
        self.stream: AsyncIterable[bytes] = response
        self.reason = response.reason.decode("ascii", errors="ignore")
        encoding = _header_encoding(response.headers)
        headers: dict[str, str] = {}
        for key, value in response.headers:
            name = key.decode(encoding).lower()
            text = value.decode(encoding)
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        self.headers = headers

    async def aclose(self) -> None:
        """The response closed: its connection back to its pool when it was read to its end."""
        await self._response.aclose()

    def all(self, name: bytes) -> list[str]:
        """Every value of header ``name`` (lower case), one by one."""
        encoding = _header_encoding(self.raw)
        return [v.decode(encoding) for k, v in self.raw if k.lower() == name]


def _header_encoding(headers: list[tuple[bytes, bytes]]) -> str:
    for encoding in ("ascii", "utf-8"):
        try:
            for key, value in headers:
                key.decode(encoding)
                value.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "iso-8859-1"


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        return value.encode("utf-8")


class _Cookies:
    """The cookies servers set, sent back to them as a browser would (the standard
    library's cookie jar and policy, as httpx kept them); looked at only when a response
    sets one or when there is one to send. The jar and urllib's requests it reads are
    imported only then (together a fifth of this module's import time)."""

    def __init__(self) -> None:
        self._jar: CookieJar | None = None

    def header(self, address: _Address, method: str) -> str | None:
        jar = self._jar
        if jar is None:
            return None
        import urllib.request

        request = urllib.request.Request(address.text, method=method)
        jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def keep(self, answer: _Answer, method: str) -> None:
        if "set-cookie" not in answer.headers:
            return
        import urllib.request
        from http.cookiejar import CookieJar

        if self._jar is None:
            self._jar = CookieJar()
        request = urllib.request.Request(answer.address.text, method=method)
        self._jar.extract_cookies(_CookieResponse(answer), request)  # type: ignore[arg-type]


class _CookieResponse:
    """What the cookie jar reads of a response."""

    def __init__(self, answer: _Answer) -> None:
        self._answer = answer

    def info(self) -> _CookieResponse:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str]:
        found = self._answer.all(name.lower().encode("ascii"))
        return found or (default if default is not None else [])


class _Guard:
    """Every request, redirects included, is checked before it connects: a host that is not
    trusted must resolve to public addresses only, and the connection goes to the address
    that was checked (the name is not looked up a second time; it is still the Host header
    and the TLS server name)."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self._trusted = frozenset(host.lower() for host in trusted)

    async def place(self, address: _Address) -> str:
        """The address to connect to for ``address``: its name when it is trusted."""
        if address.host in self._trusted:
            return address.name
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                address.name, address.port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise ConnectError(str(exc)) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        host = address.host
        refused = address_refusal(host, addresses) if addresses else f"{host} has no address"
        if refused:
            raise FetchError(refused, kind="refused")
        return addresses[0]


# what is read from a connection at a time, and the most a response's head may take
_READ = 64 * 1024
_HEAD = 100 * 1024
_KEEP_IDLE = 5.0  # seconds an idle connection is kept


class _Connection:
    """One HTTP/1.1 connection: h11's state of it over a stream of _AsyncioBackend."""

    __slots__ = ("h11", "idle_since", "stream")

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD)
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        """Kept not too long, and neither closed by its server nor sent anything since."""
        return now - self.idle_since < _KEEP_IDLE and not self.stream.get_extra_info("is_readable")

    async def send(self, data: bytes, timeout: float | None) -> None:
        # a server may answer before it has read the request, and close: its answer is
        # read all the same (as httpcore does)
        with suppress(WriteError):
            await self.stream.write(data, timeout)

    async def event(self, timeout: float | None) -> h11.Event | type[h11.PAUSED]:
        state = self.h11
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await self.stream.read(_READ, timeout)
            if not data and state.their_state is h11.SEND_RESPONSE:
                raise RemoteProtocolError("Server disconnected without sending a response.")
            state.receive_data(data)


class _Response:
    """A response's status, reason and headers as they came, and its body as it comes
    (iterate over it); closed, its connection goes back to its pool if it was read to its
    end and may be used again, and is closed otherwise."""

    __slots__ = ("_connection", "_done", "_timeout", "headers", "reason", "status")

    def __init__(
        self,
        connection: _Connection,
        head: h11.Response,
        timeout: float | None,
        done: Callable[[_Connection | None], bool],
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._done: Callable[[_Connection | None], bool] | None = done
        self.status = head.status_code
        self.reason = bytes(head.reason)
        self.headers: list[tuple[bytes, bytes]] = head.headers.raw_items()

    def __aiter__(self) -> _Response:
        return self

    async def __anext__(self) -> bytes:
        while True:
            event = await self._connection.event(self._timeout)
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                raise StopAsyncIteration

    async def aclose(self) -> None:
        done, self._done = self._done, None
        if done is None:
            return
        connection = self._connection
        state = connection.h11
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            if done(connection):
                return
        else:
            done(None)
        await connection.stream.aclose()


class _Pools:
    """The connections of each host (scheme, name, address and port): up to ``per_host``
    idle ones kept, so that the 304s of a refresh come on kept connections; a request takes
    the one used last that is still usable, or makes one. HTTP/1.1 by h11 over
    _AsyncioBackend, TLS with the one context for all hosts.

    httpcore's pool did this with more CPU than the rest of a 304: locks, shields from
    cancellation and traces around every step, and a look at every connection of the pool
    whenever it placed or finished a request. Here a host's connections are looked at only
    when one of its requests starts. At most ``kept`` hosts keep idle connections; those of
    the one used longest ago with nothing in flight are closed when another host is added.
    The global and per-host limits are the Fetcher's: a pool never makes a request wait (a
    redirect may bring more of a run's requests to one host than per_host).
    """

    def __init__(self, *, concurrency: int, per_host: int) -> None:
        self._idle = per_host
        self._kept = max(concurrency, 64)
        self._pools: OrderedDict[tuple[str, ...], list[_Connection]] = OrderedDict()
        self._busy: Counter[tuple[str, ...]] = Counter()
        self._tls: ssl.SSLContext | None = None  # one for all hosts (each costs a CA load)

    async def open(
        self,
        address: _Address,
        place: str,
        method: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        timeouts: dict[str, float],
    ) -> _Response:
        """The response to ``method`` at ``address``, connected to at ``place``: its head
        read, its body to be read; close it (``aclose``) when done."""
        key = (address.scheme, address.name, place, str(address.port))
        idle = self._pools.get(key)
        if idle is None:
            idle = self._pools[key] = []
            await self._trim(key)
        self._pools.move_to_end(key)
        connection = None
        now = time.monotonic()
        while idle:
            kept = idle.pop()
            if kept.usable(now):
                connection = kept
                break
            await kept.stream.aclose()
        self._busy[key] += 1
        try:
            if connection is None:
                connection = await self._connect(address, place, timeouts["connect"])
            state = connection.h11
            try:
                data = state.send(
                    h11.Request(method=method, target=address.target, headers=headers)
                )
                if body:
                    data += state.send(h11.Data(data=body))
                data += state.send(h11.EndOfMessage())
            except h11.LocalProtocolError as exc:
                raise LocalProtocolError(str(exc)) from exc
            await connection.send(data, timeouts["write"])
            while True:
                head = await connection.event(timeouts["read"])
                if isinstance(head, h11.Response):
                    break  # anything else before it is informational (1xx)
        except BaseException:
            self._done(key)
            if connection is not None:
                await connection.stream.aclose()
            raise
        return _Response(connection, head, timeouts["read"], lambda kept: self._back(key, kept))

    async def _connect(self, address: _Address, place: str, timeout: float) -> _Connection:
        stream = await _BACKEND.connect_tcp(place, address.port, timeout=timeout)
        if address.scheme == "https":
            if self._tls is None:
                self._tls = _tls_context()
                self._tls.set_alpn_protocols(["http/1.1"])
            # the name, also when the connection goes to the address it was checked to have
            stream = await stream.start_tls(self._tls, address.name, timeout)
        return _Connection(stream)

    def _back(self, key: tuple[str, ...], connection: _Connection | None) -> bool:
        """A response of ``key`` closed; whether its connection (one that may be used
        again) is kept."""
        self._done(key)
        idle = self._pools.get(key)
        if connection is None or idle is None or len(idle) >= self._idle:
            return False
        connection.idle_since = time.monotonic()
        idle.append(connection)
        return True

    def _done(self, key: tuple[str, ...]) -> None:
        self._busy[key] -= 1
        if not self._busy[key]:
            del self._busy[key]

    async def _trim(self, new: tuple[str, ...]) -> None:
        idle = [key for key in self._pools if key not in self._busy and key != new]
        for key in idle[: max(0, len(self._pools) - self._kept)]:
            for connection in self._pools.pop(key):
                await connection.stream.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for idle in pools:
            for connection in idle:
                await connection.stream.aclose()


def _tls_context() -> ssl.SSLContext:
    """The certificate authorities httpx trusts: SSL_CERT_FILE or SSL_CERT_DIR when set,
    else certifi's (Mozilla's) list; host names checked, TLS 1.2 at least (the standard
    library's defaults)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi  # when the first https address is requested (with importlib.resources)

    return ssl.create_default_context(cafile=certifi.where())


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime  # the rare Retry-After with a date

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- a request's errors --------------------------------------------------------------------
# Named and ordered as httpcore's were (the connections were once its, and a message without
# words names its kind), and raised by the streams below, with the operating system's error
# as the cause.


class TimeoutException(Exception):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class NetworkError(Exception):
    pass


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class ProtocolError(Exception):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class UnsupportedProtocol(Exception):
    pass


class ProxyError(Exception):
    pass


# which wait ran out, in words
_TIMEOUTS: dict[type[Exception], str] = {
    ConnectTimeout: "no connection",
    ReadTimeout: "no data",
    WriteTimeout: "could not send",
    PoolTimeout: "no free connection",
}

# what a request raises when it fails (its errors have no common base)
_NETWORK_ERRORS = (
    TimeoutException,
    NetworkError,
    ProtocolError,
    UnsupportedProtocol,
    ProxyError,
)
_NetworkError = TimeoutException | NetworkError | ProtocolError | UnsupportedProtocol | ProxyError


def _redirect_error(exc: Exception) -> str:
    if isinstance(exc, _OffSite):
        return f"redirected to {exc.url}, which is not to be followed"
    if isinstance(exc, _Loop):
        return "redirected in a loop: " + " -> ".join(exc.urls)
    return f"too many redirects (more than {MAX_REDIRECTS})"


# what the operating system says, in words a person can act on
_SOCKET_WORDS = {
    socket.EAI_NONAME: "name not found",
    socket.EAI_AGAIN: "name lookup failed (no answer from the name server)",
    getattr(socket, "EAI_NODATA", -5): "name not found",
    getattr(socket, "EAI_ADDRFAMILY", -9): "name has no address",
    errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
    errno.ECONNRESET: "connection reset by the server",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "no route to the host",
    errno.ETIMEDOUT: "no answer (connection timed out)",
}


def _os_error(exc: BaseException) -> OSError | None:
    """The operating system's error under the errors above."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    found: list[OSError] = []
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError):
            found.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += [a for a in current.args if isinstance(a, BaseException)]
        todo += list(getattr(current, "exceptions", ()))  # an ExceptionGroup's members
    # the one that carries an error number says most ("All connection attempts failed" none)
    return next((e for e in found if e.errno), found[0] if found else None)


def _kind(exc: _NetworkError) -> str:
    cause = _os_error(exc)
    if isinstance(cause, socket.gaierror):
        return "dns"
    if isinstance(cause, ssl.SSLError):
        return "tls"
    if isinstance(exc, NetworkError):
        return "connect"
    if isinstance(exc, ProtocolError):
        return "protocol"
    return "fetch"


def _describe(exc: _NetworkError, url: str) -> str:
    host = urlsplit(url).hostname or url
    cause = _os_error(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"cannot connect to {host}: its TLS certificate is not trusted ({cause.verify_message})"
        )
    if isinstance(cause, ssl.SSLError):
        return f"cannot connect to {host}: TLS failed ({cause.reason or cause})"
    if isinstance(exc, NetworkError):
        words = _SOCKET_WORDS.get(cause.errno) if cause is not None and cause.errno else None
        if words is None and cause is not None:
            words = (cause.strerror or str(cause)).lower()
        return f"cannot connect to {host}: {words or str(exc) or 'connection failed'}"
    if isinstance(exc, RemoteProtocolError):
        return f"{host} broke the HTTP protocol: {exc}"
    if isinstance(exc, UnsupportedProtocol):
        return f"not an http(s) address: {url}"
    return f"{host}: {exc or type(exc).__name__}"


# --- the network backend on asyncio ----------------------------------------------------------
# httpcore's default backend for asyncio goes through anyio: a cancel scope around every read
# and write, and a poll() of the socket whenever it looks whether an idle connection is still
# usable (for every idle connection of a pool, whenever it places a request); together more
# CPU than the rest of a 304. Here a read waits on a future with one timer, a write is handed
# to the transport, and whether an idle connection has something to read (its server closed
# it, or sent what nobody asked for) is what the protocol has been given already. TLS is
# asyncio's, with the same ssl context and the same server name (SNI and verification).
# Errors are the ones above, as httpcore's own backends raised them, the operating system's as
# the cause.

# received and not yet read, at most; beyond it the transport stops reading the socket
_HIGH_WATER = 256 * 1024

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _Protocol(asyncio.Protocol):
    """What a connection received, and whether it may be written to."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.lost = False
        self.paused_reading = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.error = exc
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, what: asyncio.Future[None], timeout: float | None) -> None:
        """Wait for ``what`` at most ``timeout`` seconds (TimeoutError), with one timer."""
        if timeout is None:
            await what
            return
        handle = asyncio.get_running_loop().call_later(timeout, _expire, what)
        try:
            await what
        finally:
            handle.cancel()

    async def readable(self, timeout: float | None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await self.wait(self._waiter, timeout)

    async def drained(self, timeout: float | None) -> None:
        if self._drain is not None:
            await self.wait(self._drain, timeout)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class _Stream:
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                await protocol.readable(timeout)
            except TimeoutError as exc:
                raise ReadTimeout(str(exc) or "timed out") from exc
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.paused_reading and len(protocol.buffer) <= _HIGH_WATER // 4:
                protocol.paused_reading = False
                if not protocol.lost:
                    self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise ReadError(str(protocol.error)) from protocol.error
        return b""  # the end: the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            error = protocol.error
            raise WriteError(str(error or "the connection is closed")) from error
        try:
            self._transport.write(buffer)
            await protocol.drained(timeout)
        except TimeoutError as exc:
            raise WriteTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise WriteError(str(exc)) from exc
        if protocol.lost and protocol.error is not None:
            raise WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        if self._transport.get_extra_info("ssl_object") is None:
            self._transport.close()  # what is still to be sent is sent, then it closes
        else:
            self._transport.abort()  # as httpcore's own backend: no wait for close_notify

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _Stream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                secure = await loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeout,
                )
        except TimeoutError as exc:
            self._transport.abort()
            raise ConnectTimeout(str(exc) or "timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise ConnectError(str(exc)) from exc
        except BaseException:
            self._transport.abort()
            raise
        if secure is None:  # the connection was lost during the handshake
            raise ConnectError("the connection closed during the TLS handshake")
        assert isinstance(secure, asyncio.Transport)
        self._protocol.transport = secure
        return _Stream(secure, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # an idle connection with something to read, or closed by its server, is no use
            return bool(self._protocol.buffer) or self._protocol.eof
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class _AsyncioBackend:
    """The network backend on asyncio's transports (see the section's comment)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> _Stream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=local
                )
        except TimeoutError as exc:
            raise ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> _Stream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError as exc:
            raise ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_BACKEND = _AsyncioBackend()
