"""The fetcher over real loopback HTTP: conditional requests, limits, retries, errors."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from civicfeed import __version__
from civicfeed import fetch as fetch_module
from civicfeed.errors import FetchError
from civicfeed.fetch import Fetcher
from civicfeed.models import Validators
from origin import FIXTURES, Origin

LOOPBACK = ("127.0.0.1", "localhost")  # the test origin's hosts, trusted as a source's would be


def fetch(url: str, **options: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with Fetcher(backoff=0.05, trusted=LOOPBACK) as fetcher:
            return await fetcher.fetch(url, **options)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_get_sends_user_agent_and_returns_body_and_validators(origin: Origin) -> None:
    origin.set(
        "/feed",
        b"<rss/>",
        content_type="application/rss+xml",
        last_modified="Mon, 11 Feb 2019 10:00:00 GMT",
    )
    fetched = fetch(origin.url("/feed"))
    assert fetched.status == 200
    assert fetched.content == b"<rss/>"
    assert fetched.content_type == "application/rss+xml"
    assert fetched.validators.etag
    assert fetched.validators.last_modified == "Mon, 11 Feb 2019 10:00:00 GMT"
    agent = origin.hits("/feed")[0].headers["User-Agent"]
    assert agent.startswith(f"civicfeed/{__version__}")


def test_conditional_get_answers_304(origin: Origin) -> None:
    origin.set(
        "/feed",
        b"<rss/>",
        content_type="application/rss+xml",
        last_modified="Mon, 11 Feb 2019 10:00:00 GMT",
    )
    first = fetch(origin.url("/feed"))
    second = fetch(origin.url("/feed"), validators=first.validators)
    assert second.not_modified
    assert second.content == b""
    sent = origin.hits("/feed")[1].headers
    assert sent["If-None-Match"] == first.validators.etag
    assert sent["If-Modified-Since"] == "Mon, 11 Feb 2019 10:00:00 GMT"


def test_redirects_are_followed_and_final_url_kept(origin: Origin) -> None:
    def moved(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(301)
        handler.send_header("Location", "/new/place?x=1&y=2")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    origin.routes["/old"] = moved
    origin.set("/new/place?x=1&y=2", b"<html></html>")
    fetched = fetch(origin.url("/old"))
    assert fetched.url == origin.url("/new/place?x=1&y=2")


def test_gzip_is_decoded(origin: Origin) -> None:
    origin.set(
        "/z",
        gzip.compress(b"<rss>" + b" " * 1000 + b"</rss>"),
        content_type="application/rss+xml",
        headers={"Content-Encoding": "gzip"},
    )
    assert fetch(origin.url("/z")).content.startswith(b"<rss>")


def test_over_max_bytes_is_an_error(origin: Origin) -> None:
    origin.set("/big", b"x" * 50_000)
    with pytest.raises(FetchError, match="larger than max_bytes"):
        fetch(origin.url("/big"), max_bytes=10_000)


def test_over_max_bytes_after_decompression_is_an_error(origin: Origin) -> None:
    bomb = gzip.compress(b"<" * 5_000_000)  # 5 MB that travel as a few KB
    origin.set("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="larger than max_bytes"):
        fetch(origin.url("/bomb"), max_bytes=100_000)


def test_http_error_is_not_retried(origin: Origin) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(origin.url("/missing"))
    assert len(origin.hits("/missing")) == 1


def test_server_error_is_retried_then_succeeds(origin: Origin) -> None:
    calls = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        status, body = (500, b"oops") if len(calls) == 1 else (200, b"<rss/>")
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    origin.routes["/flaky"] = flaky
    assert fetch(origin.url("/flaky")).content == b"<rss/>"
    assert len(calls) == 2


def test_binary_content_type_is_refused(origin: Origin) -> None:
    origin.set("/doc.pdf", b"%PDF-1.4", content_type="application/pdf")
    with pytest.raises(FetchError, match="application/pdf, neither an HTML page nor a feed"):
        fetch(origin.url("/doc.pdf"))


def test_connection_refused_is_a_fetch_error() -> None:
    origin = Origin()
    port = origin.port
    origin.server.server_close()  # nothing listens there any more
    with pytest.raises(FetchError, match="cannot connect"):
        fetch(f"http://127.0.0.1:{port}/", timeout=3)


def test_a_hanging_server_hits_the_deadline(origin: Origin) -> None:
    release = threading.Event()

    def hang(handler: BaseHTTPRequestHandler) -> None:
        release.wait(10)

    origin.routes["/hang"] = hang
    try:  # the answer never comes before release: the deadline alone ends the fetch
        with pytest.raises(FetchError, match="timed out"):
            fetch(origin.url("/hang"), timeout=1.0)
    finally:
        release.set()


def test_at_most_two_requests_per_host_at_once(origin: Origin) -> None:
    active = []
    peak = []
    lock = threading.Lock()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.2)
        with lock:
            active.pop()
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    for n in range(6):
        origin.routes[f"/slow{n}"] = slow

    async def go() -> None:
        async with Fetcher(per_host=2, trusted=LOOPBACK) as fetcher:
            await asyncio.gather(*(fetcher.fetch(origin.url(f"/slow{n}")) for n in range(6)))

    asyncio.run(go())
    assert max(peak) == 2
    assert len(origin.requests) == 6


def test_other_hosts_are_not_held_up_by_the_per_host_limit(origin: Origin) -> None:
    # 127.0.0.1 and localhost are different hosts to the limiter
    origin.set("/a", b"a")
    origin.set("/b", b"b")

    async def go() -> list[bytes]:
        async with Fetcher(per_host=1, trusted=LOOPBACK) as fetcher:
            results = await asyncio.gather(
                fetcher.fetch(origin.url("/a")), fetcher.fetch(origin.url("/b", host="localhost"))
            )
        return [r.content for r in results]

    assert asyncio.run(go()) == [b"a", b"b"]


def test_retry_after_is_honoured(origin: Origin) -> None:
    calls: list[float] = []

    def busy(handler: BaseHTTPRequestHandler) -> None:
        calls.append(time.monotonic())
        status = 429 if len(calls) == 1 else 200
        handler.send_response(status)
        if status == 429:
            handler.send_header("Retry-After", "1")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    origin.routes["/busy"] = busy
    assert fetch(origin.url("/busy"), timeout=10).content == b"ok"
    assert calls[1] - calls[0] >= 0.9


def test_validators_none_sends_no_conditions(origin: Origin) -> None:
    origin.set("/x", b"x")
    fetch(origin.url("/x"), validators=Validators())
    headers = origin.hits("/x")[0].headers
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers


def test_waiting_for_a_slot_does_not_count_against_the_timeout(origin: Origin) -> None:
    # one slot for the host: the second request waits 1 s for it, then takes 1 s itself;
    # its 1.8 s timeout starts when it gets the slot (counted from the start it would run out)
    origin.set("/a", b"a", delay=1.0)
    origin.set("/b", b"b", delay=1.0)

    async def go() -> list[bytes]:
        async with Fetcher(per_host=1, trusted=LOOPBACK) as fetcher:
            done = await asyncio.gather(
                fetcher.fetch(origin.url("/a"), timeout=1.8),
                fetcher.fetch(origin.url("/b"), timeout=1.8),
            )
        return [f.content for f in done]

    assert asyncio.run(go()) == [b"a", b"b"]  # neither timed out
    assert sorted(r.path for r in origin.requests) == ["/a", "/b"]  # each asked once


def test_a_deadline_bounds_the_wait_for_a_slot_too(origin: Origin) -> None:
    origin.set("/a", b"a", delay=0.8)
    origin.set("/b", b"b")

    async def go() -> str:
        async with Fetcher(per_host=1, trusted=LOOPBACK) as fetcher:
            first = asyncio.ensure_future(fetcher.fetch(origin.url("/a")))
            await asyncio.sleep(0.1)
            try:
                await fetcher.fetch(origin.url("/b"), deadline=time.monotonic() + 0.3)
            except FetchError as exc:
                return str(exc)
            finally:
                await first
        return "fetched"

    assert asyncio.run(go()).startswith("timed out")


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [
        ("gzip, gzip", gzip.compress(gzip.compress(b"<rss/>")), "compressed more than once"),
        ("br", b"\x0b\x02\x80<rss/>\x03", "Content-Encoding 'br', which is not read"),
        ("gzip", b"not gzip at all", "cannot be decompressed"),
    ],
)
def test_content_encodings_that_are_refused(
    origin: Origin, encoding: str, body: bytes, reason: str
) -> None:
    origin.set("/z", body, headers={"Content-Encoding": encoding})
    with pytest.raises(FetchError, match=reason):
        fetch(origin.url("/z"))


def test_raw_deflate_is_decoded(origin: Origin) -> None:
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # no zlib header, as some servers send
    body = squeeze.compress(b"<rss>" + b" " * 1000 + b"</rss>") + squeeze.flush()
    origin.set("/d", body, headers={"Content-Encoding": "deflate"})
    assert fetch(origin.url("/d")).content.startswith(b"<rss>")


def test_a_declared_length_over_max_bytes_is_refused_whatever_the_encoding(
    origin: Origin,
) -> None:
    origin.set("/big", b"x" * 50_000, headers={"Content-Encoding": "identity"})
    with pytest.raises(FetchError, match="larger than max_bytes"):
        fetch(origin.url("/big"), max_bytes=10_000)


def test_304_answers_come_on_one_kept_connection(origin: Origin) -> None:
    origin.set("/feed.rss", b"<rss/>" * 100, content_type="application/rss+xml")

    async def go() -> None:
        async with Fetcher(trusted=LOOPBACK) as fetcher:
            first = await fetcher.fetch(origin.url("/feed.rss"))
            for _ in range(5):
                again = await fetcher.fetch(origin.url("/feed.rss"), validators=first.validators)
                assert again.not_modified

    asyncio.run(go())
    seen = origin.hits("/feed.rss")
    assert len(seen) == 6
    assert len({s.client for s in seen}) == 1, [s.client for s in seen]


def test_304s_from_more_hosts_than_the_concurrency_come_on_kept_connections() -> None:
    # four hosts (origins), two requests in flight at a time: each host's connection stays
    # open through the other hosts' turns
    origins = [Origin().start() for _ in range(4)]
    try:
        for server in origins:
            server.set("/feed.rss", b"<rss/>" * 100, content_type="application/rss+xml")

        async def go() -> None:
            async with Fetcher(concurrency=2, trusted=LOOPBACK) as fetcher:
                urls = [server.url("/feed.rss") for server in origins]
                first = await asyncio.gather(*(fetcher.fetch(url) for url in urls))
                for _ in range(3):
                    again = await asyncio.gather(
                        *(
                            fetcher.fetch(url, validators=f.validators)
                            for url, f in zip(urls, first, strict=True)
                        )
                    )
                    assert all(a.not_modified for a in again)

        asyncio.run(go())
        for server in origins:
            seen = server.hits("/feed.rss")
            assert len(seen) == 4
            assert len({s.client for s in seen}) == 1, [s.client for s in seen]
    finally:
        for server in origins:
            server.stop()


# --- the network under httpcore: asyncio's transports, TLS -------------------------------------

TLS = FIXTURES / "tls"  # a test authority (ca.pem) and server certificates with their keys


def tls_origin(certificate: str) -> Origin:
    """An origin that speaks HTTPS only, with ``certificate`` (a file in TLS)."""
    server = Origin()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / certificate)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server.start()


@pytest.fixture
def test_authority(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetcher trusts the test authority as well as the usual ones."""
    made = fetch_module._tls_context

    def with_test_authority() -> ssl.SSLContext:
        context = made()
        context.load_verify_locations(TLS / "ca.pem")
        return context

    monkeypatch.setattr(fetch_module, "_tls_context", with_test_authority)


def test_https_with_a_trusted_certificate_and_its_304s_on_one_connection(
    test_authority: None,
) -> None:
    server = tls_origin("localhost.pem")
    try:
        server.set("/feed.rss", b"<rss/>" * 100, content_type="application/rss+xml")
        url = f"https://localhost:{server.port}/feed.rss"

        async def go() -> None:
            async with Fetcher(trusted=LOOPBACK) as fetcher:
                first = await fetcher.fetch(url)
                assert first.status == 200
                assert first.content == b"<rss/>" * 100
                for _ in range(3):
                    again = await fetcher.fetch(url, validators=first.validators)
                    assert again.not_modified

        asyncio.run(go())
        seen = server.hits("/feed.rss")
        assert len(seen) == 4
        assert len({s.client for s in seen}) == 1, [s.client for s in seen]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("certificate", "authority_trusted"),
    [
        ("localhost.pem", False),  # for localhost, but its authority is not trusted here
        ("elsewhere.pem", True),  # valid, for elsewhere.example, not localhost
    ],
    ids=["nobody-vouches-for-it", "another-hosts"],
)
def test_https_with_a_certificate_that_does_not_hold_is_refused(
    certificate: str, authority_trusted: bool, request: pytest.FixtureRequest
) -> None:
    if authority_trusted:
        request.getfixturevalue("test_authority")
    server = tls_origin(certificate)
    try:
        server.set("/feed.rss", b"<rss/>")
        with pytest.raises(FetchError, match="certificate is not trusted") as raised:
            fetch(f"https://localhost:{server.port}/feed.rss")
        assert raised.value.kind == "tls"
        assert server.hits("/feed.rss") == []
    finally:
        server.stop()


def test_connections_are_made_on_asyncio_transports(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpcore's default backend (anyio) costs more CPU than the rest of a 304
    made: list[tuple[str, int]] = []
    connect = fetch_module._AsyncioBackend.connect_tcp

    async def counted(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        made.append((host, port))
        return await connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(fetch_module._AsyncioBackend, "connect_tcp", counted)
    origin.set("/feed.rss", b"<rss/>")
    assert fetch(origin.url("/feed.rss")).content == b"<rss/>"
    assert made == [("127.0.0.1", origin.port)]


def test_a_kept_connection_its_server_closed_is_not_used_again(origin: Origin) -> None:
    closed = threading.Event()

    def answer_then_close(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")
        handler.wfile.flush()
        handler.close_connection = True  # closed without saying so (no Connection: close)
        closed.set()

    origin.routes["/closing"] = answer_then_close
    origin.set("/next", b"next")

    async def go() -> list[bytes]:
        async with Fetcher(retries=0, trusted=LOOPBACK) as fetcher:
            first = await fetcher.fetch(origin.url("/closing"))
            closed.wait(5)
            await asyncio.sleep(0.2)  # the close reaches the client
            second = await fetcher.fetch(origin.url("/next"))
            return [first.content, second.content]

    assert asyncio.run(go()) == [b"ok", b"next"]
    assert origin.hits("/closing")[0].client != origin.hits("/next")[0].client


def test_a_body_larger_than_the_read_buffer_arrives_whole(origin: Origin) -> None:
    # more than the transport keeps unread before it stops reading the socket (flow control)
    body = bytes(range(256)) * 8192  # 2 MB
    origin.set("/big", body, content_type="text/html")
    assert fetch(origin.url("/big"), max_bytes=4_000_000).content == body


# --- redirects, as the fetcher follows them --------------------------------------------------


def moved(location: str, status: int = 302, **headers: str):  # type: ignore[no-untyped-def]
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_followed_with_a_get_and_the_same_conditions(
    origin: Origin, status: int
) -> None:
    origin.routes["/old/feed"] = moved("../new/feed#top", status)  # relative, dot segments
    origin.set("/new/feed", b"<rss/>", content_type="application/rss+xml")
    fetched = fetch(origin.url("/old/feed"), validators=Validators('"v1"', None))
    assert fetched.content == b"<rss/>"
    assert fetched.url == origin.url("/new/feed#top")
    assert origin.hits("/new/feed")[0].headers["If-None-Match"] == '"v1"'
    assert origin.hits("/new/feed")[0].headers["Host"] == f"127.0.0.1:{origin.port}"


def test_five_redirects_are_followed_and_a_sixth_is_not(origin: Origin) -> None:
    for hop in range(6):
        origin.routes[f"/r{hop}"] = moved(f"/r{hop + 1}")
    origin.set("/r6", b"<rss/>")
    assert fetch(origin.url("/r1")).url == origin.url("/r6")  # five hops: r1 to r6
    with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)") as raised:
        fetch(origin.url("/r0"))
    assert raised.value.kind == "redirects"
    assert len(origin.hits("/r6")) == 1  # the first fetch's: the second never asked for it
    assert len(origin.hits("/r5")) == 2


def test_a_redirect_loop_is_found_before_the_limit(origin: Origin) -> None:
    origin.routes["/a"] = moved("/b")
    origin.routes["/b"] = moved(origin.url("/a"))
    with pytest.raises(FetchError, match="redirected in a loop") as raised:
        fetch(origin.url("/a"))
    assert raised.value.kind == "redirects"
    assert str(raised.value).endswith(
        f"{origin.url('/a')} -> {origin.url('/b')} -> {origin.url('/a')}"
    )
    assert [r.path for r in origin.requests] == ["/a", "/b"]  # neither asked twice, no retry


def test_a_redirect_without_location_is_an_http_error(origin: Origin) -> None:
    def nowhere(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    origin.routes["/nowhere"] = nowhere
    with pytest.raises(FetchError, match=r"HTTP 302 Found from 127\.0\.0\.1") as raised:
        fetch(origin.url("/nowhere"))
    assert raised.value.kind == "http"


def test_a_redirect_to_another_scheme_is_refused_before_anything_is_asked(
    origin: Origin,
) -> None:
    origin.routes["/ftp"] = moved("ftp://127.0.0.1/feed")
    with pytest.raises(FetchError, match="a redirect to a ftp: URL is refused") as raised:
        fetch(origin.url("/ftp"))
    assert raised.value.kind == "refused"


def test_a_cookie_a_redirect_sets_is_sent_on_the_next_hop(origin: Origin) -> None:
    # portals that check for cookies first: set one, redirect to the same page
    def check(handler: BaseHTTPRequestHandler) -> None:
        if "visited=1" in (handler.headers.get("Cookie") or ""):
            handler.send_response(200)
            handler.send_header("Content-Length", "6")
            handler.end_headers()
            handler.wfile.write(b"<rss/>")
            return
        moved("/portal", Set_Cookie="visited=1; Path=/")(handler)

    origin.routes["/portal"] = check
    assert fetch(origin.url("/portal")).content == b"<rss/>"
    assert [r.headers.get("Cookie") for r in origin.hits("/portal")] == [None, "visited=1"]


def test_the_hub_is_told_and_a_303_from_it_is_followed_with_a_get() -> None:
    seen: list[tuple[str, str, bytes]] = []

    class Hub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(("POST", self.path, body))
            moved("/thanks", 303)(self)

        def do_GET(self) -> None:
            seen.append(("GET", self.path, b""))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub = f"http://127.0.0.1:{server.server_address[1]}/hub"

    async def go() -> None:
        async with Fetcher(trusted=LOOPBACK) as fetcher:
            await fetcher.notify_hub(hub, ["https://feeds.example/a.rss"])

    try:
        asyncio.run(go())
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [
        ("POST", "/hub", b"hub.mode=publish&hub.url=https%3A%2F%2Ffeeds.example%2Fa.rss"),
        ("GET", "/thanks", b""),
    ]


# --- the fetcher's own connections: when one is used again, and when not --------------------


def test_a_connection_idle_for_longer_than_it_is_kept_is_not_used_again(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.set("/feed.rss", b"<rss/>")

    async def twice() -> None:
        async with Fetcher(trusted=LOOPBACK) as fetcher:
            await fetcher.fetch(origin.url("/feed.rss"))
            await fetcher.fetch(origin.url("/feed.rss"))

    asyncio.run(twice())
    monkeypatch.setattr(fetch_module, "_KEEP_IDLE", 0.0)
    asyncio.run(twice())
    clients = [s.client for s in origin.hits("/feed.rss")]
    assert clients[0] == clients[1]  # kept
    assert len({clients[1], clients[2], clients[3]}) == 3  # each on a new one


def test_connection_close_and_a_body_left_unread_close_the_connection(origin: Origin) -> None:
    origin.set("/closing", b"<rss/>", headers={"Connection": "close"})
    origin.set("/big", b"x" * 50_000)
    origin.set("/next", b"next")

    async def go() -> list[str]:
        outcomes = []
        async with Fetcher(retries=0, trusted=LOOPBACK) as fetcher:
            for path, limit in (("/closing", 100), ("/next", 100), ("/big", 10_000)):
                try:
                    await fetcher.fetch(origin.url(path), max_bytes=limit)
                    outcomes.append("ok")
                except FetchError as exc:
                    outcomes.append(exc.kind)
            outcomes.append((await fetcher.fetch(origin.url("/next"))).content.decode())
        return outcomes

    assert asyncio.run(go()) == ["ok", "ok", "too-large", "next"]
    clients = [r.client for r in origin.requests]
    assert clients[0] != clients[1]  # after Connection: close
    assert clients[2] != clients[3]  # after a body left unread
    assert clients[1] == clients[2]  # and kept otherwise


def test_informational_answers_before_the_response_are_passed_over(origin: Origin) -> None:
    def early_hints(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response_only(103)
        handler.send_header("Link", "</style.css>; rel=preload")
        handler.end_headers()
        handler.send_response(200)
        handler.send_header("Content-Length", "6")
        handler.end_headers()
        handler.wfile.write(b"<rss/>")

    origin.routes["/hints"] = early_hints
    fetched = fetch(origin.url("/hints"))
    assert (fetched.status, fetched.content) == (200, b"<rss/>")
    assert "link" not in fetched.headers


def test_a_server_that_hangs_up_without_answering_is_asked_again(origin: Origin) -> None:
    calls = []

    def hang_up_once(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            handler.close_connection = True
            return  # nothing sent
        handler.send_response(200)
        handler.send_header("Content-Length", "6")
        handler.end_headers()
        handler.wfile.write(b"<rss/>")

    origin.routes["/once"] = hang_up_once
    assert fetch(origin.url("/once")).content == b"<rss/>"
    assert len(calls) == 2

    async def never() -> None:
        async with Fetcher(retries=0, trusted=LOOPBACK) as fetcher:
            calls.clear()
            await fetcher.fetch(origin.url("/once"))

    with pytest.raises(FetchError, match="broke the HTTP protocol: Server disconnected") as raised:
        asyncio.run(never())
    assert raised.value.kind == "protocol"
