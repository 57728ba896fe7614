"""The feed server: the output folder over HTTP (Starlette on uvicorn, used only here).

Right content types, ETag and Last-Modified with 304 answers, gzip, Cache-Control, CORS for
GET (partner sites show the feeds in widgets), and /healthz. A browser that navigates to a
feed (Sec-Fetch-Dest: document) is shown the feed's readable page instead; feed readers get
the feed itself, and ?raw gives the feed as application/xml, which browsers display through
the feed's XSL stylesheet.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from .errors import CivicfeedError

__all__ = ["FeedServer", "make_app"]

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
}
CACHE_CONTROL = "public, max-age=300"

Health = Callable[[], tuple[bool, dict[str, Any]]]


class _Feeds(StaticFiles):
    """StaticFiles with feed content types, caching headers and the browser page."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)

    async def get_response(self, path: str, scope: Scope) -> Response:
        target = path
        wants = _wants(scope)
        feed = path.endswith((".rss", ".atom"))
        if feed and wants == "page":
            page = Path(path).with_suffix(".html").as_posix()
            if (Path(str(self.directory)) / page).is_file():
                target = page
        response = await super().get_response(target, scope)
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


def _wants(scope: Scope) -> str:
    """ "xml" when ?raw asks for the feed as XML, "page" for a browser's navigation, else
    "feed"."""
    if "raw" in parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        return "xml"
    headers = dict(scope.get("headers") or [])
    return "page" if headers.get(b"sec-fetch-dest") == b"document" else "feed"


def make_app(output: Path, health: Health) -> Starlette:
    async def healthz(request: Request) -> Response:
        alive, details = health()
        return Response(
            json.dumps(details, indent=2, ensure_ascii=False),
            status_code=200 if alive else 503,
            media_type="application/json",
            headers={"cache-control": "no-cache"},
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Mount("/", app=_Feeds(output)),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "HEAD"],
                expose_headers=["ETag", "Last-Modified"],
            ),
            Middleware(GZipMiddleware, minimum_size=512),
        ],
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # the service handles SIGTERM and SIGINT itself and stops the server in order
        yield


class FeedServer:
    """``await server.serve()`` until ``server.stop()``; ``port`` once started.

    The socket is bound when the server is made, so that an address in use is a clear error
    before anything else starts (uvicorn would exit the whole process instead).
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
        self._server = _Server(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
            )
        )

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def port(self) -> int:
        sockets = [s for server in self._server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1])
