"""`civicfeed demo` as a new user meets it: a real process, its sample origin and its feed
server on loopback ports, fetched over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feedcheck import check_rss, rss_items
from test_service import Process


def start_demo(folder: Path) -> tuple[Process, str]:
    """The demo in ``folder``, its feeds on a free port: (process, base address)."""
    demo = Process("demo", "--listen", "127.0.0.1:0", "--dir", str(folder), stdout_too=True)
    line = demo.wait_for("open in a browser:", timeout=60)
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    assert match, line
    return demo, match.group(1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    process, base = start_demo(tmp_path)
    try:
        yield process, base
    finally:
        process.kill()


def test_demo_refreshes_the_sample_and_serves_its_feeds(
    demo: tuple[Process, str], tmp_path: Path
) -> None:
    process, base = demo
    assert (tmp_path / "sources.yaml").read_text().startswith("# civicfeed demo")
    for source, items in (("herne", 4), ("dortmund", 3), ("muelheim", 2)):
        assert re.search(
            rf"^{source} +new: {items} new, 0 updated, {items} items", "\n".join(process.seen), re.M
        ), process.seen
    assert process.wait_for("paste into a feed reader") == (
        f"  paste into a feed reader:  {base}ruhr.rss  (all three cities)"
    )

    with httpx.Client(base_url=base, timeout=10) as client:
        index = client.get("/")
        assert index.status_code == 200
        subscribe = re.findall(r'<input class="url"[^>]* value="([^"]+)"', index.text)
        assert subscribe == [
            f"{base}{name}.rss" for name in ("ruhr", "herne", "dortmund", "muelheim")
        ]
        opml = client.get("/feeds.opml").text
        assert f'xmlUrl="{base}ruhr.rss"' in opml

        feed = client.get("/ruhr.rss")
        assert feed.status_code == 200
        assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"
        (tmp_path / "ruhr.rss").write_bytes(feed.content)
    check_rss(tmp_path / "ruhr.rss")
    items = rss_items(tmp_path / "ruhr.rss")
    titles = [item["title"] for item in items]
    # 4 + 3 + 2 stories, the one Dortmund republished from Herne shown once
    assert len(titles) == 8
    assert titles.count("Interkommunaler Integrationstag im Kulturzentrum") == 1
    assert "Weihnachtsmarkt: Straßensperrungen in der Innenstadt" in titles  # windows-1252
    assert "Ruhrbania: Uferweg wieder durchgehend begehbar" in titles  # Atom
    shared = next(i for i in items if i["title"].startswith("Interkommunaler"))
    assert "Auch veröffentlicht von" in shared["description"]
    # the Herne item without a date on the listing got it from its detail page
    lernpaten = next(i for i in items if i["title"] == "Ehrenamtliche Lernpaten gesucht")
    assert lernpaten["pubDate"].startswith("Tue, 17 Nov 2026")

    code, _ = process.stop()
    assert code == 0


def test_demo_on_an_address_in_use_says_so_before_doing_anything(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "civicfeed",
                "demo",
                "--listen",
                f"127.0.0.1:{port}",
                "--dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr == f"civicfeed: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert done.stdout == ""
    assert not (tmp_path / "feeds").exists()
