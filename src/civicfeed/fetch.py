"""Fetch: HTTP with httpx, politely and within bounds. httpx is used only here.

One shared async client; at most ``concurrency`` requests in all and ``per_host`` per host;
conditional requests; a deadline for the whole request including retries; the body streamed
and cut at ``max_bytes`` (counted after decompression); retries with exponential backoff and
jitter for connection errors, timeouts, 429 and 5xx, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from email.utils import parsedate_to_datetime
from types import MappingProxyType, TracebackType
from urllib.parse import urlsplit

import httpx

from . import __version__
from .errors import FetchError
from .models import Fetched, Validators

__all__ = ["Fetcher", "user_agent"]

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
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Fetcher:
    """Use as ``async with Fetcher(...) as fetcher: await fetcher.fetch(url, ...)``."""

    def __init__(
        self,
        *,
        concurrency: int = 16,
        per_host: int = 2,
        retries: int = 2,
        backoff: float = 0.5,
        agent: str | None = None,
    ) -> None:
        self._limit = asyncio.Semaphore(concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_host)
        )
        self._retries = retries
        self._backoff = backoff
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=10,
            headers={"User-Agent": agent or user_agent(), "Accept": _ACCEPT},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            trust_env=False,
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
    ) -> Fetched:
        """GET ``url``; a 304 comes back as Fetched(status=304). FetchError on failure."""
        deadline = time.monotonic() + timeout
        host = urlsplit(url).hostname or ""
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"timed out after {timeout:g}s")
            try:
                # time spent waiting for a free slot counts against the deadline too
                return await asyncio.wait_for(
                    self._guarded(url, host, deadline, max_bytes, validators), remaining
                )
            except TimeoutError:
                reason, after = f"timed out after {timeout:g}s", None
                error: Exception = FetchError(reason)
            except _Retry as retry:
                reason, after, error = retry.reason, retry.after, FetchError(retry.reason)
            attempt += 1
            pause = after if after is not None else self._pause(attempt)
            if attempt > self._retries or time.monotonic() + pause >= deadline:
                if attempt > 1:
                    raise FetchError(f"{reason} (after {attempt} attempts)") from error
                raise error
            await asyncio.sleep(pause)

    async def _guarded(
        self, url: str, host: str, deadline: float, max_bytes: int, validators: Validators | None
    ) -> Fetched:
        async with self._limit, self._hosts[host]:
            return await self._once(
                url, max(deadline - time.monotonic(), 0.001), max_bytes, validators
            )

    async def notify_hub(self, hub: str, topics: list[str], *, timeout: float = 10.0) -> None:
        """Tell a WebSub hub that these feed URLs changed (hub.mode=publish)."""
        for topic in topics:
            try:
                response = await self._client.post(
                    hub, data={"hub.mode": "publish", "hub.url": topic}, timeout=timeout
                )
            except httpx.HTTPError as exc:
                raise FetchError(f"WebSub hub {hub}: {_describe(exc)}") from exc
            if not 200 <= response.status_code < 300:
                raise FetchError(f"WebSub hub {hub}: HTTP {response.status_code} for {topic}")

    def _pause(self, attempt: int) -> float:
        base: float = self._backoff * 2 ** (attempt - 1)
        return base + random.uniform(0, base)

    async def _once(
        self, url: str, timeout: float, max_bytes: int, validators: Validators | None
    ) -> Fetched:
        headers = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        try:
            async with self._client.stream("GET", url, headers=headers, timeout=limits) as response:
                return await self._read(response, max_bytes)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol | httpx.DecodingError):
                raise FetchError(_describe(exc)) from exc
            raise _Retry(_describe(exc)) from exc
        except httpx.TooManyRedirects as exc:
            raise FetchError("too many redirects") from exc
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc)) from exc

    async def _read(self, response: httpx.Response, max_bytes: int) -> Fetched:
        status = response.status_code
        if status in _RETRY_STATUS:
            raise _Retry(
                f"HTTP {status} {response.reason_phrase}".strip(),
                _retry_after(response.headers.get("retry-after")),
            )
        headers = MappingProxyType({k.lower(): v for k, v in response.headers.items()})
        validators = Validators(response.headers.get("etag"), response.headers.get("last-modified"))
        final = str(response.url)
        if status == 304:
            return Fetched(final, status, headers, b"", validators)
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status} {response.reason_phrase}".strip())
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media.startswith(_BINARY_TYPES):
            raise FetchError(f"the response is {media}, neither an HTML page nor a feed")
        declared = response.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > max_bytes
            and "content-encoding" not in response.headers
        ):
            raise FetchError(f"the response is larger than max_bytes ({max_bytes} bytes)")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"the response is larger than max_bytes ({max_bytes} bytes)")
        return Fetched(final, status, headers, bytes(body), validators)


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


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the protocol: {text}"
    return text
