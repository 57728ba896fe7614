"""Fetch: HTTP with httpx, politely and within bounds. httpx is used only here.

One shared async client; at most ``concurrency`` requests in all and ``per_host`` per host;
conditional requests; a deadline for the whole request including retries, which starts when
the request gets its connection slot (time spent in civicfeed's own queue does not count);
the body streamed and cut at ``max_bytes``, counted on the wire and again after decoding its
one Content-Encoding layer, chunk by chunk; retries with exponential backoff and jitter for
connection errors, timeouts, 429 and 5xx, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import ssl
import time
import zlib
from collections import Counter, OrderedDict, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from . import __version__
from .errors import FetchError
from .models import Fetched, Validators
from .netpolicy import MAX_REDIRECTS, address_refusal, scheme_refusal

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
        pools = _Pools(concurrency=concurrency, per_host=per_host)
        self._client = _Client(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=_Guard(pools, trusted),
            headers={
                "User-Agent": agent or user_agent(),
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, deflate",  # the encodings _decoder reads
            },
            trust_env=False,
            event_hooks={"request": [_check_hop], "response": [_check_redirect]},
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._client.aclose()

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
        for topic in topics:
            try:
                response = await self._client.post(
                    hub, data={"hub.mode": "publish", "hub.url": topic}, timeout=timeout
                )
            except httpx.HTTPError as exc:
                raise FetchError(f"WebSub hub {hub}: {_describe(exc, hub)}", kind="hub") from exc
            if not 200 <= response.status_code < 300:
                raise FetchError(
                    f"WebSub hub {hub}: HTTP {response.status_code} for {topic}", kind="hub"
                )

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
        headers = None
        if validators is not None and (validators.etag or validators.last_modified):
            headers = {}
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        try:
            request = self._client.build_request("GET", url, headers=headers, timeout=limits)
            response = await self._client.send(request, stream=True)
            try:
                return await self._read(response, max_bytes, started)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            host = urlsplit(url).hostname or url
            raise _Retry(
                f"timed out ({_TIMEOUTS.get(type(exc), 'no answer')}) waiting for {host}",
                kind="timeout",
            ) from exc
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol | httpx.DecodingError):
                raise FetchError(_describe(exc, url), kind=_kind(exc)) from exc
            raise _Retry(_describe(exc, url), kind=_kind(exc)) from exc
        except httpx.TooManyRedirects as exc:
            raise FetchError(
                f"too many redirects (more than {MAX_REDIRECTS})", kind="redirects"
            ) from exc
        except _OffSite as exc:
            raise FetchError(
                f"redirected to {exc.url}, which is not to be followed", kind="redirects"
            ) from exc
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc, url), kind=_kind(exc)) from exc

    async def _read(self, response: httpx.Response, max_bytes: int, started: float) -> Fetched:
        status = response.status_code
        if status in _RETRY_STATUS:
            raise _Retry(
                f"HTTP {status} {response.reason_phrase}".strip() + f" from {response.url.host}",
                _retry_after(response.headers.get("retry-after")),
                kind="http",
            )
        headers = MappingProxyType({k.lower(): v for k, v in response.headers.items()})
        validators = Validators(response.headers.get("etag"), response.headers.get("last-modified"))
        final = str(response.url)
        if status == 304:
            # read to its end (it has no body): only then does the connection go back to the
            # pool; left unread, it was closed and every 304 cost a new connection
            async for _ in response.aiter_raw():
                pass
            return Fetched(
                final, status, headers, b"", validators, elapsed=time.monotonic() - started
            )
        if not 200 <= status < 300:
            raise FetchError(
                f"HTTP {status} {response.reason_phrase}".strip() + f" from {response.url.host}",
                kind="http",
            )
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media.startswith(_BINARY_TYPES):
            raise FetchError(
                f"the response is {media}, neither an HTML page nor a feed", kind="type"
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        decoder = _decoder(response.headers.get("content-encoding", ""))
        body = bytearray()
        wire = 0
        async for chunk in response.aiter_raw():
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


# what the current request may reach (see ``stay_on``); every hop of a redirect is checked
_STAY_ON: ContextVar[Callable[[str], bool] | None] = ContextVar("stay_on", default=None)


class _OffSite(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


async def _check_hop(request: httpx.Request) -> None:
    refused = scheme_refusal(str(request.url), redirect=True)  # the first hop is checked already
    if refused:
        raise FetchError(refused, kind="refused")
    allowed = _STAY_ON.get()
    if allowed is not None and not allowed(str(request.url)):
        raise _OffSite(str(request.url))


async def _check_redirect(response: httpx.Response) -> None:
    """A redirect's target is checked before httpx builds a request for it."""
    location = response.headers.get("location") if response.is_redirect else None
    if location is not None:
        refused = scheme_refusal(urljoin(str(response.url), location.strip()), redirect=True)
        if refused:
            raise FetchError(refused, kind="refused")


class _Cookies(httpx.Cookies):
    """Cookies as httpx keeps them, with a response's looked at only when it sets one:
    reading it for the cookie jar costs more than the rest of a 304's handling."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """httpx's client, its cookies kept in _Cookies."""

    @property
    def cookies(self) -> httpx.Cookies:
        return self._kept_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._kept_cookies = _Cookies(cookies)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = None


class _Guard(httpx.AsyncBaseTransport):
    """Every request, redirects included, is checked before it connects: a host that is not
    trusted must resolve to public addresses only, and the connection goes to the address
    that was checked (the name is not looked up a second time)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, trusted: Iterable[str]) -> None:
        self._inner = inner
        self._trusted = frozenset(host.lower() for host in trusted)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.lower()
        if host in self._trusted:
            return await self._inner.handle_async_request(request)
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                request.url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        refused = address_refusal(host, addresses) if addresses else f"{host} has no address"
        if refused:
            raise FetchError(refused, kind="refused")
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=addresses[0]),
            headers=request.headers,  # Host: the name, as before
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": request.url.host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Pools(httpx.AsyncBaseTransport):
    """A connection pool per host (scheme, name, address and port), each keeping up to
    ``per_host`` idle connections, so that the 304s of a refresh come on kept connections.

    One pool for all hosts either closed idle connections whenever more hosts than its size
    took turns (a new connection for nearly every request of a refresh over many hosts), or,
    made as large as all hosts' connections, cost more CPU than it saved: httpcore polls
    every idle connection of a pool whenever it places a request. Here it polls the host's
    own. At most ``kept`` pools stay open; the one used longest ago with nothing in flight is
    closed when another is needed. The global and per-host limits are the Fetcher's.
    """

    def __init__(self, *, concurrency: int, per_host: int) -> None:
        # a pool never makes a request wait: the Fetcher's limits do (a redirect may bring
        # more of a run's requests to one host than per_host)
        self._limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=per_host)
        self._kept = max(concurrency, 64)
        self._pools: OrderedDict[tuple[str, ...], httpx.AsyncHTTPTransport] = OrderedDict()
        self._busy: Counter[tuple[str, ...]] = Counter()
        self._tls: ssl.SSLContext | None = None  # one for all pools (each costs a CA load)
        self._plain: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        name = str(request.extensions.get("sni_hostname") or url.host)
        key = (url.scheme, name.lower(), url.host, str(url.port or ""))
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._make(url.scheme)
            await self._trim(key)
        self._pools.move_to_end(key)
        self._busy[key] += 1
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self._done(key)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Release(response.stream, lambda: self._done(key))
        return response

    def _make(self, scheme: str) -> httpx.AsyncHTTPTransport:
        if scheme != "https":
            # a pool is for one scheme (see its key): a plain http one never starts TLS, and
            # loading the certificate authorities for it delayed a run's first request. Its
            # context trusts no authority, so that TLS through it could never succeed.
            if self._plain is None:
                self._plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            return self._transport(self._plain)
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._transport(self._tls)

    def _transport(self, context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
        """httpx's transport with the pool it makes (these limits, HTTP/1.1, no retries),
        its connections on asyncio's transports (see _AsyncioBackend)."""
        transport = httpx.AsyncHTTPTransport(verify=context, limits=self._limits)
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=self._limits.max_connections,
            max_keepalive_connections=self._limits.max_keepalive_connections,
            keepalive_expiry=self._limits.keepalive_expiry,
            network_backend=_BACKEND,
        )
        return transport

    def _done(self, key: tuple[str, ...]) -> None:
        self._busy[key] -= 1
        if not self._busy[key]:
            del self._busy[key]

    async def _trim(self, new: tuple[str, ...]) -> None:
        idle = [key for key in self._pools if key not in self._busy and key != new]
        for key in idle[: max(0, len(self._pools) - self._kept)]:
            await self._pools.pop(key).aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()


class _Release(httpx.AsyncByteStream):
    """A response's body that tells its pool when it is done with (read or closed)."""

    def __init__(self, stream: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# which wait ran out, in words
_TIMEOUTS: dict[type[Exception], str] = {
    httpx.ConnectTimeout: "no connection",
    httpx.ReadTimeout: "no data",
    httpx.WriteTimeout: "could not send",
    httpx.PoolTimeout: "no free connection",
}

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
    """The operating system's error under httpx's and httpcore's wrappers."""
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


def _kind(exc: httpx.HTTPError) -> str:
    cause = _os_error(exc)
    if isinstance(cause, socket.gaierror):
        return "dns"
    if isinstance(cause, ssl.SSLError):
        return "tls"
    if isinstance(exc, httpx.ConnectError | httpx.NetworkError):
        return "connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol"
    return "fetch"


def _describe(exc: httpx.HTTPError, url: str) -> str:
    host = urlsplit(url).hostname or url
    cause = _os_error(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"cannot connect to {host}: its TLS certificate is not trusted ({cause.verify_message})"
        )
    if isinstance(cause, ssl.SSLError):
        return f"cannot connect to {host}: TLS failed ({cause.reason or cause})"
    if isinstance(exc, httpx.ConnectError | httpx.NetworkError):
        words = _SOCKET_WORDS.get(cause.errno) if cause is not None and cause.errno else None
        if words is None and cause is not None:
            words = (cause.strerror or str(cause)).lower()
        return f"cannot connect to {host}: {words or str(exc) or 'connection failed'}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} broke the HTTP protocol: {exc}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"not an http(s) address: {url}"
    return f"{host}: {exc or type(exc).__name__}"


# --- httpcore's network backend on asyncio -------------------------------------------------
# httpcore's default backend for asyncio goes through anyio: a cancel scope around every read
# and write, and a poll() of the socket whenever it looks whether an idle connection is still
# usable (for every idle connection of a pool, whenever it places a request); together more
# CPU than the rest of a 304. Here a read waits on a future with one timer, a write is handed
# to the transport, and whether an idle connection has something to read (its server closed
# it, or sent what nobody asked for) is what the protocol has been given already. TLS is
# asyncio's, with the same ssl context and the same server name (SNI and verification).
# Errors are httpcore's, as its own backends raise them, the operating system's as the cause.

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


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                await protocol.readable(timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(str(exc) or "timed out") from exc
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.paused_reading and len(protocol.buffer) <= _HIGH_WATER // 4:
                protocol.paused_reading = False
                if not protocol.lost:
                    self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error)) from protocol.error
        return b""  # the end: the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            error = protocol.error
            raise httpcore.WriteError(str(error or "the connection is closed")) from error
        try:
            self._transport.write(buffer)
            await protocol.drained(timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc
        if protocol.lost and protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error)) from protocol.error

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
    ) -> httpcore.AsyncNetworkStream:
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
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            self._transport.abort()
            raise
        if secure is None:  # the connection was lost during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
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


class _AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's transports (see the section's comment)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=local
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_BACKEND = _AsyncioBackend()
