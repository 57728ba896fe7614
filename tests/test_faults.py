"""Faults of the real web, over real loopback HTTP: every one ends in a clear result (an
answer that never ends is let go of: the origin sees the connection closed), and leaves the
stored entries and written feeds exactly as they were."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from civicfeed.cli import main
from conftest import civicfeed, wait_until, write_sources
from feedcheck import check_atom, check_rss, rss_items
from origin import FIXTURES, Origin, Page, client_hung_up, held_after_headers

TIMEOUT = 2.0
RELEASE = threading.Event()
# what the endless answers saw, in order: ("open", path) when one starts, ("closed", path)
# when the client closes its connection before the answer is complete
EVENTS: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def _release_hanging_handlers() -> Iterator[None]:
    RELEASE.clear()
    EVENTS.clear()
    yield
    RELEASE.set()


def hang_after_headers(handler: BaseHTTPRequestHandler) -> None:
    EVENTS.append(("open", handler.path))
    if held_after_headers(handler, RELEASE):
        EVENTS.append(("closed", handler.path))


def trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(60):
        try:
            handler.wfile.write(b"<")
            handler.wfile.flush()
        except OSError:
            EVENTS.append(("closed", handler.path))
            return
        if client_hung_up(handler, RELEASE, 1.0):
            EVENTS.append(("closed", handler.path))
            return
        if RELEASE.is_set():
            return


SENT = {"bytes": 0}


def fifty_megabytes(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()  # no length: the client must count
    chunk = b"<p>" + b"x" * 65533
    SENT["bytes"] = 0
    for _ in range(50 * 2**20 // len(chunk)):
        try:
            handler.wfile.write(chunk)
        except OSError:
            EVENTS.append(("closed", handler.path))
            return
        SENT["bytes"] += len(chunk)


def sequence(*pages: Page) -> Callable[[BaseHTTPRequestHandler], None]:
    """Answer with each page in turn, then keep answering with the last."""
    calls: list[float] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        calls.append(time.monotonic())
        page = pages[min(len(calls), len(pages)) - 1]
        handler.send_response(page.status)
        handler.send_header("Content-Type", page.content_type)
        handler.send_header("Content-Length", str(len(page.body)))
        for name, value in page.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(page.body)

    answer.calls = calls  # type: ignore[attr-defined]
    return answer


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>x</title><link>http://x.org/</link><description>d</description>
<item><title>&lol9;</title><link>http://x.org/1</link></item></channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><link>http://x.org/</link><description>d</description>
<item><title>Geheim: &secret;</title><link>http://x.org/1</link></item></channel></rss>"""

FEED = (FIXTURES / "dortmund-cp1252.rss").read_bytes()


@dataclass
class Fault:
    name: str
    source: str  # which source gets the fault: "herne" (HTML) or "dortmund" (RSS)
    answer: Page | Callable[[BaseHTTPRequestHandler], None]
    code: int
    reason: str | None  # a fragment of the line printed for the source
    endless: bool = False  # the answer would not end by itself: the client must close it


def _random_bytes() -> bytes:
    rng = random.Random(4)
    return bytes(rng.randrange(256) for _ in range(20000))


FAULTS = [
    Fault("hang after headers", "herne", hang_after_headers, 1, "timed out", endless=True),
    Fault("trickle a byte a second", "dortmund", trickle, 1, "timed out", endless=True),
    Fault("50 MB", "herne", fifty_megabytes, 1, "larger than max_bytes", endless=True),
    Fault(
        "404 is not retried",
        "dortmund",
        Page(b"no", status=404, content_type="text/plain"),
        1,
        "HTTP 404 Not Found",
    ),
    Fault(
        "random bytes",
        "herne",
        Page(_random_bytes(), content_type="text/html"),
        1,
        "binary data",
    ),
    Fault(
        "random bytes as a feed",
        "dortmund",
        Page(_random_bytes(), content_type="application/rss+xml"),
        1,
        "not a feed",
    ),
    Fault(
        "truncated XML",
        "dortmund",
        Page(FEED[: len(FEED) * 2 // 3], content_type="application/rss+xml"),
        1,
        "incomplete",
    ),
    Fault("empty 200", "dortmund", Page(b"", content_type="application/rss+xml"), 1, "empty"),
    Fault(
        "HTML where a feed is expected",
        "dortmund",
        Page((FIXTURES / "herne-2019.html").read_bytes()),
        1,
        "HTML page",
    ),
    Fault(
        "a feed where HTML is expected",
        "herne",
        Page(FEED, content_type="application/rss+xml"),
        1,
        "is a feed, not an HTML page",
    ),
    Fault(
        "a PDF",
        "herne",
        Page(b"%PDF-1.4 ...", content_type="application/pdf"),
        1,
        "application/pdf",
    ),
    Fault(
        "billion laughs",
        "dortmund",
        Page(BILLION_LAUGHS, content_type="application/xml"),
        1,
        "declares XML entities",
    ),
    Fault(
        "XXE",
        "dortmund",
        Page(XXE, content_type="application/rss+xml"),
        1,
        "declares XML entities",
    ),
    Fault(
        "layout change",
        "herne",
        Page(b"<html><body><p>Neue Seite</p></body></html>"),
        1,
        "matched nothing",
    ),
]


def setup_sources(
    origin: Origin, tmp_path: Path, max_bytes: str = "1MB", timeout: float = TIMEOUT
) -> Path:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    config = write_sources(
        tmp_path,
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        "    html: {item: article.news-teaser, title: h3, date: .news-date, link: a.more,"
        " summary: .news-text}\n"
        f"  - id: dortmund\n    title: Dortmund\n    url: {origin.url('/dortmund.rss')}\n",
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [herne, dortmund]\n",
        defaults=f"  timeout: {timeout}s\n  max_bytes: {max_bytes}\n",
    )
    return config


def snapshot(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_is_reported_in_time_and_loses_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: Fault
) -> None:
    config = setup_sources(origin, tmp_path)
    assert main(["refresh", "--config", str(config)]) == 0
    capsys.readouterr()
    feeds = tmp_path / "feeds"
    before = snapshot(feeds)

    path = "/herne/" if fault.source == "herne" else "/dortmund.rss"
    origin.routes[path] = fault.answer
    code = main(["refresh", "--config", str(config)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert code == fault.code, out.out
    line = next(x for x in out.out.splitlines() if x.startswith(fault.source))
    assert "failed" in line
    assert fault.reason is not None
    assert fault.reason in line
    other = next(
        x
        for x in out.out.splitlines()
        if x.startswith("dortmund" if fault.source == "herne" else "herne")
    )
    assert "unchanged" in other  # the other source was refreshed as usual
    if fault.endless:  # the refresh ended because the client let go, not because the origin did
        wait_until(lambda: ("closed", path) in EVENTS, f"the client never closed {path}")
    assert snapshot(feeds) == before
    for name in ("herne", "dortmund", "alle"):
        check_rss(feeds / f"{name}.rss")
        check_atom(feeds / f"{name}.atom")
    if fault.name == "50 MB":
        assert SENT["bytes"] < 20 * 2**20  # the client hung up long before the end
    if fault.name == "404 is not retried":
        assert len(origin.hits("/dortmund.rss")) == 2  # the first refresh, and one attempt


def test_500_then_200_is_retried_and_succeeds(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_sources(origin, tmp_path)
    answer = sequence(
        Page(b"oops", status=500, content_type="text/plain"),
        Page(FEED, content_type="application/rss+xml"),
    )
    origin.routes["/dortmund.rss"] = answer
    assert main(["refresh", "--config", str(config)]) == 0
    assert "dortmund                 new: 2 new" in capsys.readouterr().out
    assert len(answer.calls) == 2  # type: ignore[attr-defined]


def test_429_retry_after_is_waited_for(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_sources(origin, tmp_path)
    answer = sequence(
        Page(b"slow down", status=429, content_type="text/plain", headers={"Retry-After": "1"}),
        Page(FEED, content_type="application/rss+xml"),
    )
    origin.routes["/dortmund.rss"] = answer
    assert main(["refresh", "--config", str(config)]) == 0
    calls = answer.calls  # type: ignore[attr-defined]
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.95


def test_retry_after_beyond_the_deadline_fails_at_once(origin: Origin, tmp_path: Path) -> None:
    # a five-minute deadline and an hour's Retry-After: a refresh that waited for either would
    # still be running when the 60 s limit of this test ends it
    config = setup_sources(origin, tmp_path, timeout=300)
    origin.set(
        "/dortmund.rss",
        b"later",
        status=503,
        content_type="text/plain",
        headers={"Retry-After": "3600"},
    )
    done = civicfeed("refresh", "--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("dortmund"))
    assert "HTTP 503 Service Unavailable" in line
    assert "attempts" not in line
    assert len(origin.hits("/dortmund.rss")) == 1  # asked once, never again


def test_malicious_teaser_comes_out_clean(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_sources(origin, tmp_path)
    evil = """<html><body><section>
      <article class="news-teaser"><p class="news-date">Meldung vom 1. März 2019</p>
      <h3>Harmlos <script>alert(1)</script>\x07 Titel</h3>
      <div class="news-text"><p onclick="steal()" style="position:fixed">Text
        <a href="javascript:alert(2)">klick</a> <a href="JaVaScRiPt:alert(3)">auch</a>
        <img src="x.png" onerror="alert(4)"><iframe src="https://evil.example/"></iframe>
        <form action="https://evil.example/"><input name="pin"></form>
        <style>body{display:none}</style><svg onload="alert(5)"><circle/></svg>
        <a href="/ok.html">gut</a></p></div>
      <a class="more" href="/m/1.html">mehr</a></article></section></body></html>"""
    origin.set("/herne/", evil)
    assert main(["refresh", "--config", str(config)]) == 0
    feeds = tmp_path / "feeds"
    check_rss(feeds / "herne.rss")
    check_atom(feeds / "herne.atom")
    (item,) = rss_items(feeds / "herne.rss")
    assert item["title"] == "Harmlos Titel"  # the heading's text, no script, no bell
    summary = item["description"].lower()
    for banned in (
        "<script",
        "onclick",
        "style=",
        "javascript:",
        "onerror",
        "<iframe",
        "<form",
        "<input",
        "<style",
        "<svg",
        "onload",
        "evil.example",
    ):
        assert banned not in summary, banned
    assert f'href="{origin.url("/ok.html")}"' in item["description"]
    assert f'src="{origin.url("/herne/x.png")}"' in item["description"]


def test_huge_titles_many_items_and_bad_bytes_keep_feeds_valid(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # this case is about size, not time: a loaded machine may need more than TIMEOUT to parse
    config = setup_sources(origin, tmp_path, max_bytes="5MB", timeout=60)
    long_title = "Sehr " * 20_000  # 100 KB
    rows = [
        f'<article class="news-teaser"><p class="news-date">{1 + n % 28}.02.2019</p>'
        f'<h3>Meldung {n}\x00\x1b[31m</h3><a class="more" href="/m/{n}.html">m</a>'
        f"</article>"
        for n in range(10_000)
    ]
    rows.insert(
        0,
        f'<article class="news-teaser"><p class="news-date">1.3.2019</p>'
        f'<h3>{long_title}</h3><a class="more" href="/m/long.html">m</a></article>',
    )
    page = (
        "<html><head><meta charset='utf-8'></head><body>" + "".join(rows) + "</body></html>"
    ).encode() + b"\xff\xfe broken utf-8 \xc3"
    origin.set("/herne/", page, content_type="text/html; charset=utf-8")
    assert main(["refresh", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "only the first 1000 are read" in out
    assert "was shortened" in out
    assert "invalid byte sequence" in out
    feeds = tmp_path / "feeds"
    check_rss(feeds / "herne.rss")
    check_atom(feeds / "herne.atom")
    items = rss_items(feeds / "herne.rss")
    assert len(items) == 100  # max_entries
    assert all(len(i["title"]) <= 300 for i in items)
    assert all("\x1b" not in i["title"] and "\x00" not in i["title"] for i in items)


def test_unwritable_feed_keeps_the_old_file_and_the_store(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_sources(origin, tmp_path)
    assert main(["refresh", "--config", str(config)]) == 0
    feeds = tmp_path / "feeds"
    old_atom = (feeds / "herne.atom").read_bytes()
    # a directory where the new file would go: the rename fails, as on a full or
    # read-only disk (permissions cannot be used here: the tests may run as root)
    (feeds / "herne.rss").unlink()
    (feeds / "herne.rss").mkdir()
    origin.set(
        "/herne/",
        (FIXTURES / "herne-2019.html")
        .read_text()
        .replace("Elf Workshops zwischen", "Zwölf Workshops zwischen"),
    )
    code = main(["refresh", "--config", str(config)])
    out = capsys.readouterr()
    assert code == 1
    assert re.search(r"cannot (read|write) \S*herne\.rss", out.err)
    assert "herne                    updated: 0 new, 1 updated" in out.out
    assert (feeds / "herne.atom").read_bytes() != old_atom  # the other files are written
    assert b"Zw\xc3\xb6lf Workshops" in (feeds / "herne.atom").read_bytes()
    assert not [f for f in os.listdir(feeds) if f.endswith(".tmp")]
    (feeds / "herne.rss").rmdir()
    assert main(["refresh", "--config", str(config)]) == 0  # and it heals
    assert "Zwölf Workshops" in rss_items(feeds / "herne.rss")[-1]["title"]


def test_many_hanging_sources_on_one_host_end_one_deadline_per_slot(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # per_host is 2: a source's deadline starts when it gets its slot, so every one of the
    # five hanging sources sends its request (none runs out of time in the queue), and each
    # is closed by the client when its own timeout is up
    sources = ""
    for n in range(5):
        origin.routes[f"/hang{n}/"] = hang_after_headers
        sources += f"  - id: hang-{n}\n    title: H{n}\n    url: {origin.url(f'/hang{n}/')}\n"
        sources += "    html: auto\n"
    config = write_sources(tmp_path, sources, defaults=f"  timeout: {TIMEOUT}s\n")
    assert main(["refresh", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.count("failed: timed out after 2s waiting for 127.0.0.1") == 5
    paths = {f"/hang{n}/" for n in range(5)}
    wait_until(lambda: {p for e, p in EVENTS if e == "closed"} == paths, f"closed: {EVENTS}")
    assert {p for e, p in EVENTS if e == "open"} == paths
