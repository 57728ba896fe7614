"""A small origin web server on 127.0.0.1 for tests: real sockets, scripted answers."""

from __future__ import annotations

import hashlib
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True  # answer If-None-Match with 304
    last_modified: str | None = None
    delay: float = 0.0  # seconds the origin thinks before it answers


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float
    client: int = 0  # the client's port: one per connection


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests


class Origin:
    """Routes are set by the test; every request is recorded in ``requests``."""

    def __init__(self) -> None:
        self.routes: dict[str, Page | Handler] = {}
        self.requests: list[Seen] = []
        self.posts: list[tuple[str, bytes]] = []  # (path, body) of every POST
        self.post_status = 202
        origin = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                origin.requests.append(
                    Seen(self.path, dict(self.headers), time.monotonic(), self.client_address[1])
                )
                route = origin.routes.get(self.path)
                try:
                    if route is None:
                        self._send(Page(b"not found", status=404, content_type="text/plain"))
                    elif isinstance(route, Page):
                        self._send(route)
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                origin.posts.append((self.path, self.rfile.read(length)))
                self.send_response(origin.post_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, page: Page) -> None:
                if page.delay:
                    time.sleep(page.delay)
                tag = '"' + hashlib.sha1(page.body).hexdigest()[:16] + '"'
                if page.etag and page.status == 200 and self.headers.get("If-None-Match") == tag:
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                if page.etag:
                    self.send_header("ETag", tag)
                if page.last_modified:
                    self.send_header("Last-Modified", page.last_modified)
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(page.body)

        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> Origin:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def set(self, path: str, body: bytes | str, **options: object) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Page(data, **options)  # type: ignore[arg-type]

    def serve_fixture(self, path: str, name: str, **options: object) -> None:
        self.set(path, (FIXTURES / name).read_bytes(), **options)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def client_hung_up(
    handler: BaseHTTPRequestHandler, release: threading.Event, seconds: float
) -> bool:
    """Hold the connection until the client closes it (True), or until ``release`` is set or
    ``seconds`` pass (False). For handlers that answer slowly or never."""
    deadline = time.monotonic() + seconds
    while not release.is_set() and time.monotonic() < deadline:
        if select.select([handler.connection], [], [], 0.05)[0]:
            try:
                if handler.connection.recv(1024) == b"":
                    return True
            except OSError:
                return True
    return False


def held_after_headers(handler: BaseHTTPRequestHandler, release: threading.Event) -> bool:
    """Send the headers of a 100 kB page and then nothing: whether the client closed the
    connection (True) before ``release`` was set or a minute passed."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.flush()
    return client_hung_up(handler, release, 60)
