"""The feed server: the output folder over HTTP (Starlette on uvicorn, used only here).

Right content types, ETag and Last-Modified with 304 answers, gzip, Cache-Control, CORS for
GET (partner sites show the feeds in widgets), and /healthz. A browser that navigates to a
feed (Sec-Fetch-Dest: document) is shown the feed's readable page instead; feed readers get
the feed itself, and ?raw gives the feed as application/xml, which browsers display through
the feed's XSL stylesheet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import resource
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .accesslog import AccessLog
from .errors import CivicfeedError
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics
from .models import OutputFile
from .render import absolute_opml, absolute_page
from .write import CONTENT_TYPES, is_temporary

__all__ = ["FeedServer", "Files", "Site", "make_app", "public_base"]

CACHE_CONTROL = "public, max-age=300"

Health = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass(frozen=True)
class Site:
    """How the output folder is served: where it is published, and what the server records."""

    base_url: str | None = None  # public URL of the output folder; None: from each request
    trust_proxy: bool = False  # take scheme and host from X-Forwarded-Proto / -Host
    access_log: AccessLog | None = None
    metrics: Metrics | None = None
    gone: Callable[[], Collection[str]] = lambda: ()  # ids of feeds removed from the config


class Files(Protocol):
    """Published files that are not in a folder (the state database, write.StoreOutput):
    called in a thread, once per request."""

    def read(self, name: str) -> OutputFile | None: ...


class _Feeds(StaticFiles):
    """StaticFiles with feed content types, caching headers and the browser page; 410 for
    removed feeds; pages and OPML with absolute addresses when base_url is not set.

    The files come from the output folder; ``_StoredFeeds`` serves the same from ``Files``.
    """

    def __init__(self, directory: Path, site: Site) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self.site = site

    async def get_response(self, path: str, scope: Scope) -> Response:
        if _hidden(path):  # temporary files of a write under way, and anything dotted
            raise HTTPException(status_code=404)
        try:
            response = await self._response(path, scope)
        except HTTPException as exc:
            if exc.status_code == 404 and _feed_id(path) in await self._gone():
                return PlainTextResponse(
                    "410 Gone: this feed was removed; unsubscribe from it.\n",
                    status_code=410,
                    headers={"cache-control": CACHE_CONTROL},
                )
            raise
        if self.site.base_url is None and response.status_code == 200:
            document = await self._document(response)
            if document is not None:
                return _absolute(*document, response, scope, self.site.trust_proxy)
        return response

    async def _gone(self) -> Collection[str]:
        """The removed feeds, read in a thread (a database query must not hold up the
        event loop); none while the state cannot be read."""
        try:
            return await run_in_threadpool(self.site.gone)
        except CivicfeedError as exc:
            log.warning("cannot read the removed feeds: %s", exc)
            return ()

    async def _file(self, path: str, scope: Scope) -> Response:
        """The file's answer (304 when the request's validators match), or HTTPException."""
        return await super().get_response(path, scope)

    async def _exists(self, path: str) -> bool:
        return (Path(str(self.directory)) / path).is_file()

    async def _document(self, response: Response) -> tuple[str, bytes] | None:
        """The name and bytes of the page or OPML file a 200 answer sends; None for others."""
        if not isinstance(response, FileResponse) or not _addressed(str(response.path)):
            return None
        return str(response.path), Path(response.path).read_bytes()

    async def _response(self, path: str, scope: Scope) -> Response:
        target = path
        wants = _wants(scope)
        feed = path.endswith((".rss", ".atom"))
        if feed and wants == "page":
            page = Path(path).with_suffix(".html").as_posix()
            if await self._exists(page):
                target = page
        response = await self._file(target, scope)
        suffix = Path(target).suffix
        if response.status_code in (200, 304) and suffix in CONTENT_TYPES:
            response.headers["content-type"] = CONTENT_TYPES[suffix]
            if feed and wants == "xml":
                # a type browsers display (and style with feed.xsl) instead of downloading
                response.headers["content-type"] = "application/xml; charset=utf-8"
        response.headers["cache-control"] = CACHE_CONTROL
        if feed:
            response.headers["vary"] = "Sec-Fetch-Dest, Accept-Encoding"
        return response


class _Stored(Response):
    """A stored file's answer, knowing which file it sends."""

    def __init__(self, file: OutputFile) -> None:
        super().__init__(
            file.data,
            media_type=file.media_type,
            headers={
                "etag": file.etag,
                "last-modified": formatdate(file.modified.timestamp(), usegmt=True),
            },
        )
        self.name = file.name


class _StoredFeeds(_Feeds):
    """The published files as the state database holds them, answered as the folder's are:
    the index for a folder's address, ETag and Last-Modified as stored, 304 for a request
    whose If-None-Match or If-Modified-Since matches, 405 for other methods than GET and
    HEAD."""

    def __init__(self, files: Files, site: Site) -> None:
        super().__init__(Path("."), site)
        self.files = files

    async def check_config(self) -> None:
        return None  # no folder

    async def _read(self, name: str) -> OutputFile | None:
        try:
            found = await run_in_threadpool(self.files.read, name)
        except CivicfeedError as exc:
            log.warning("cannot read %s: %s", name, exc)
            raise HTTPException(status_code=503, detail="the feeds cannot be read now") from exc
        return found if found is not None and found.data is not None else None

    async def _file(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        name = Path(path).as_posix()
        if name in (".", ""):
            name = "index.html"
        elif name.startswith(("/", "..")):
            raise HTTPException(status_code=404)
        found = await self._read(name)
        if found is None:
            found = await self._read(f"{name}/index.html")  # a folder's address
            if found is None:
                raise HTTPException(status_code=404)
            if not scope["path"].endswith("/"):
                url = URL(scope=scope)
                return RedirectResponse(url=url.replace(path=url.path + "/"))
        response = _Stored(found)
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    async def _exists(self, path: str) -> bool:
        return await self._read(path) is not None

    async def _document(self, response: Response) -> tuple[str, bytes] | None:
        if not isinstance(response, _Stored) or not _addressed(response.name):
            return None
        return response.name, bytes(response.body)


def _addressed(name: str) -> bool:
    """Whether a file holds addresses made absolute when base_url is not set."""
    return name.endswith((".html", ".opml"))


def _hidden(path: str) -> bool:
    """Dotfiles (``.name``, ``.git/``) and temporary files (write.py's, ``*.tmp``, ``*~``)
    are never served."""
    parts = path.replace("\\", "/").split("/")
    parts = [part for part in parts if part not in ("", ".")]  # "." is the folder itself: /
    if parts and is_temporary(parts[-1]):
        return True
    return any(part.startswith(".") or part.endswith((".tmp", "~")) for part in parts)


def _wants(scope: Scope) -> str:
    """ "xml" when ?raw asks for the feed as XML, "page" for a browser's navigation, else
    "feed"."""
    if "raw" in parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        return "xml"
    headers = dict(scope.get("headers") or [])
    return "page" if headers.get(b"sec-fetch-dest") == b"document" else "feed"


def _feed_id(path: str) -> str | None:
    """The feed a path belongs to: '<id>.<ext>' or 'archive/<id>/<n>.<ext>'."""
    parts = Path(path).parts
    if len(parts) == 1 and Path(path).suffix in (".rss", ".atom", ".json", ".html"):
        return Path(path).stem
    if len(parts) == 3 and parts[0] == "archive":
        return parts[1]
    return None


def public_base(scope: Scope, trust_proxy: bool) -> str:
    """Where the client reached us: scheme and Host (or, behind a trusted proxy, what the
    proxy says in X-Forwarded-Proto and X-Forwarded-Host)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    scheme = str(scope.get("scheme") or "http")
    host = headers.get("host") or "{}:{}".format(*(scope.get("server") or ("localhost", 80)))
    if trust_proxy:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
        host = headers.get("x-forwarded-host", host).split(",")[0].strip() or host
    if scheme not in ("http", "https") or not _HOST.match(host):
        host, scheme = "localhost", "http"  # a forged header never reaches a page
    return f"{scheme}://{host}{scope.get('root_path', '')}/"


def _absolute(
    name: str, document: bytes, response: Response, scope: Scope, trust_proxy: bool
) -> Response:
    """The page or OPML file with its addresses absolute for the address it was asked at."""
    base = public_base(scope, trust_proxy)
    if name.endswith(".opml"):
        body = absolute_opml(document, base)
    else:
        body = absolute_page(document, base)
    tag = 'W/"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    headers = {
        "etag": tag,
        "cache-control": CACHE_CONTROL,
        "vary": "Host, X-Forwarded-Host, X-Forwarded-Proto, Accept-Encoding",
    }
    if "last-modified" in response.headers:
        headers["last-modified"] = response.headers["last-modified"]
    asked = dict(scope["headers"]).get(b"if-none-match", b"").decode("latin-1")
    if tag in [t.strip() for t in asked.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=response.headers["content-type"], headers=headers)


_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class _Observe:
    """Outermost: every answer (304s and errors included) is counted and logged once."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app, self.site = app, site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status, sent, done = 500, 0, False

        def record() -> None:
            nonlocal done
            if done:
                return
            done = True
            if self.site.metrics is not None:
                self.site.metrics.answered(status)
            if self.site.access_log is not None:
                self.site.access_log.request(
                    scope, status, sent, time.monotonic() - started, self.site.trust_proxy
                )

        async def watch(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # recorded before the client has the last byte: lines stay in the order
                    # of the requests on a connection
                    record()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            record()  # an answer that never completed (an error, a client gone)


def _unavailable(exc: CivicfeedError) -> Response:
    log.warning("cannot read the state: %s", exc)
    return Response(
        json.dumps({"status": "state unreadable", "error": str(exc)}, ensure_ascii=False),
        status_code=503,
        media_type="application/json",
        headers={"cache-control": "no-cache"},
    )


def make_app(output: Path | Files, health: Health, site: Site | None = None) -> Starlette:
    """The feed server's application: the files of the output folder, or those ``Files``
    holds (the state database), with the same answers."""
    site = site or Site()
    feeds = _Feeds(output, site) if isinstance(output, Path) else _StoredFeeds(output, site)
    metrics = site.metrics

    async def prometheus(request: Request) -> Response:
        assert metrics is not None
        try:  # read from the store, in a thread
            body = await run_in_threadpool(metrics.render)
        except CivicfeedError as exc:
            return _unavailable(exc)
        return Response(body, media_type=METRICS_TYPE, headers={"cache-control": "no-cache"})

    async def healthz(request: Request) -> Response:
        # the store is read in a thread: the event loop serves the feeds meanwhile
        try:
            alive, details = await run_in_threadpool(health)
        except CivicfeedError as exc:  # the state cannot be read: this server is not healthy
            return _unavailable(exc)
        return Response(
            json.dumps(details, indent=2, ensure_ascii=False),
            status_code=200 if alive else 503,
            media_type="application/json",
            headers={"cache-control": "no-cache"},
        )

    routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    if metrics is not None:
        routes.append(Route("/metrics", prometheus, methods=["GET", "HEAD"]))
    return Starlette(
        routes=[*routes, Mount("/", app=feeds)],
        middleware=[
            Middleware(_Observe, site=site),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "HEAD"],
                expose_headers=["ETag", "Last-Modified"],
            ),
            Middleware(GZipMiddleware, minimum_size=512),
        ],
    )


class _Typed(StaticFiles):
    """Static files, with the media type of each name ending in ``types``."""

    def __init__(self, directory: Path, types: Mapping[str, str]) -> None:
        super().__init__(directory=directory, html=True)
        self._types = types

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        media = self._types.get(Path(path).suffix)
        if media and response.status_code in (200, 304):
            response.headers["content-type"] = media  # the declared encoding is in the XML
        return response


def static_app(directory: Path, types: Mapping[str, str]) -> Starlette:
    """The files of ``directory`` as they are, ``types`` naming the media type of an ending."""
    return Starlette(routes=[Mount("/", app=_Typed(directory, types))])


def check_listen(host: str, port: int) -> None:
    """CivicfeedError now if ``host:port`` cannot be listened on."""
    FeedServer(Starlette(), host, port).close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # the service handles SIGTERM and SIGINT itself and stops the server in order
        yield


# a client has this long for a request's headers, and may keep an idle connection this long
HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 5.0
LIMIT_LOG_EVERY = 10.0  # seconds between two log lines about the connection limit

log = logging.getLogger("civicfeed.server")


def connection_limits(file_limit: int) -> tuple[int, int]:
    """(connections served at once, connections accepted in one go): together well below
    the process's file limit, which the state store, the fetches and the workers share."""
    reserve = max(32, file_limit // 4)
    backlog = max(8, min(128, reserve // 4))
    return max(16, min(file_limit - reserve, 10_000)), backlog


class _AcceptErrors(logging.Filter):
    """asyncio logs a traceback for every accept() that fails (out of file descriptors):
    one short line every LIMIT_LOG_EVERY seconds instead."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if "socket.accept() out of system resource" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < LIMIT_LOG_EVERY:
            return False
        self._last = now
        record.exc_info = None
        record.msg, record.args = "cannot accept connections: out of file descriptors", ()
        return True


_ACCEPT_ERRORS = _AcceptErrors()


class _Gate:
    """What every connection of one server shares: the connections that wait for a request
    (slow headers, or idle between requests), oldest first, and the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: dict[_GuardedH11, None] = {}
        self.closed = 0  # closed to make room since the last log line
        self.too_slow = 0  # closed for slow headers since the last log line
        self._logged = 0.0

    def note(self, now: float) -> None:
        if now - self._logged < LIMIT_LOG_EVERY:
            return
        self._logged = now
        log.warning(
            "connection limit reached (%d connections): the oldest idle or slow ones are "
            "closed to take new ones (%d closed, %d for headers slower than %gs, since the "
            "last such line)",
            self.limit,
            self.closed,
            self.too_slow,
            HEADER_TIMEOUT,
        )
        self.closed = self.too_slow = 0


class _GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a header timeout and a connection limit.

    A connection that has not sent a whole request head within HEADER_TIMEOUT is closed; at
    the limit, a new connection closes the oldest connection that is waiting (for headers,
    or idle between requests), so slow clients can never lock out a real one. A connection
    beyond the limit with none to close is refused at once. Nothing here logs per connection.
    """

    gate: _Gate

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.gate.limit:
            oldest = next((c for c in self.gate.waiting if c is not self), None)
            self.gate.closed += 1
            self.gate.note(self.loop.time())
            if oldest is None:
                transport.abort()
                return
            oldest.drop()
        self._wait()

    def _wait(self) -> None:
        self.gate.waiting[self] = None
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

    def _busy(self) -> None:
        self.gate.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self in self.gate.waiting:
            self.gate.too_slow += 1
            self.drop()

    def drop(self) -> None:
        self._busy()
        if not self.transport.is_closing():
            self.transport.abort()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._busy()  # a whole request head arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._wait()  # idle until the next request (IDLE_TIMEOUT closes it)

    def connection_lost(self, exc: Exception | None) -> None:
        self._busy()
        super().connection_lost(exc)


class FeedServer:
    """``await server.serve()`` until ``server.stop()``; ``port`` once started.

    The socket is bound when the server is made, so that an address in use is a clear error
    before anything else starts (uvicorn would exit the whole process instead). Connections
    are limited (see ``connection_limits``), request heads must arrive within HEADER_TIMEOUT
    and idle connections are closed after IDLE_TIMEOUT.
    """

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise CivicfeedError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        limit, backlog = connection_limits(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        protocol = type("GuardedH11", (_GuardedH11,), {"gate": _Gate(limit)})
        logging.getLogger("asyncio").addFilter(_ACCEPT_ERRORS)
        self._server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                http=protocol,
                timeout_keep_alive=int(IDLE_TIMEOUT),
                backlog=backlog,
            )
        )

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True

    def close(self) -> None:
        """Release the socket of a server that was never started."""
        self._socket.close()

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def port(self) -> int:
        sockets = [s for server in self._server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1])
