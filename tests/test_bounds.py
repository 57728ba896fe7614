"""Bounds per source, whatever the origin sends: time, bytes, memory, CPU off the event loop.

All over loopback HTTP, with real SQLite files.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from civicfeed import work
from civicfeed.cli import main
from conftest import descendants, write_sources
from origin import Origin


def small_feed(n: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Stadt {n}</title><link>https://stadt{n}.example/</link><description>d"
        f"</description><item><title>Meldung aus Stadt {n}</title>"
        f"<link>https://stadt{n}.example/1</link><pubDate>Mon, 11 Feb 2019 10:00:00 +0100"
        "</pubDate></item></channel></rss>"
    ).encode()


def test_a_thousand_sources_never_time_out_waiting_in_the_queue(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1,000 requests of 100 ms, 16 at a time, take longer than the 5 s timeout in all; each
    # request alone takes 0.1 s, so no source may fail for its wait in civicfeed's queue
    sources = 1000
    for n in range(sources):
        origin.set(f"/s{n}.rss", small_feed(n), content_type="application/rss+xml", delay=0.1)
    config = write_sources(
        tmp_path,
        "".join(
            f"  - id: s{n}\n    title: Stadt {n}\n    url: {origin.url(f'/s{n}.rss')}\n"
            for n in range(sources)
        ),
        top="concurrency: 16\nper_host: 16\n",
    )
    code = main(["refresh", "--config", str(config), "-q"])
    out = capsys.readouterr()
    assert "timed out" not in out.out
    assert code == 0, out.out[-2000:]
    assert len(origin.requests) == sources


def gzip_of_zeros(mebibytes: int) -> bytes:
    """A gzip stream that inflates to this many MiB of zeros, made without compressing them
    all: after a full flush, every further MiB compresses to the same bytes. (Its trailer is
    left off: the bomb goes off long before.)"""
    zeros = bytes(2**20)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = squeeze.compress(zeros) + squeeze.flush(zlib.Z_FULL_FLUSH)
    again = squeeze.compress(zeros) + squeeze.flush(zlib.Z_FULL_FLUSH)
    return first + again * (mebibytes - 1)


def run_measured(config: Path) -> tuple[int, str, float]:
    """``civicfeed refresh`` in its own process: (exit code, output, peak RSS in MB).

    The process may use at most 3 GiB of address space, so that the old behaviour fails the
    test instead of the machine."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    process = subprocess.Popen(
        [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=cap,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, output, usage.ru_maxrss / 1024


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [
        ("gzip, gzip", gzip.compress(gzip_of_zeros(1024), 9), "compressed more than once"),
        ("gzip", gzip_of_zeros(1024), "larger than max_bytes"),
    ],
    ids=["nested-gzip-1GiB", "gzip-1GiB"],
)
def test_a_decompression_bomb_stays_within_memory_and_the_deadline(
    origin: Origin, tmp_path: Path, encoding: str, body: bytes, reason: str
) -> None:
    origin.set(
        "/bomb.rss",
        body,
        content_type="application/rss+xml",
        headers={"Content-Encoding": encoding},
    )
    config = write_sources(
        tmp_path,
        f"  - id: bomb\n    title: Bomb\n    url: {origin.url('/bomb.rss')}\n",
        defaults="  timeout: 5s\n  max_bytes: 10MB\n",
    )
    code, output, peak = run_measured(config)
    print(f"\n{encoding} bomb of {len(body)} bytes: peak RSS {peak:.0f} MB")
    assert code == 1, output
    assert reason in output  # stopped by its bytes, long before its deadline
    assert "timed out" not in output
    assert "Traceback" not in output
    assert peak < 200


def test_a_feed_of_100000_entries_is_cut_before_it_is_converted(
    origin: Origin, tmp_path: Path
) -> None:
    entries = "".join(
        f"<item><title>Meldung {n}</title><link>https://stadt.example/{n}</link></item>"
        for n in range(100_000)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{entries}'
    origin.set("/many.rss", body + "</channel></rss>", content_type="application/rss+xml")
    config = write_sources(
        tmp_path,
        f"  - id: many\n    title: Many\n    url: {origin.url('/many.rss')}\n",
        defaults="  timeout: 20s\n  max_bytes: 20MB\n",
    )
    code, output, peak = run_measured(config)
    print(f"\n100,000 entries ({len(body) / 1e6:.1f} MB): peak RSS {peak:.0f} MB")
    assert code == 0, output  # within the source's deadline (a timeout fails the source)
    assert "more than 1000 items in the feed; only the first are read" in output
    assert "1000 items" in output
    assert peak < 300  # the 99,000 left over were never turned into entries


def test_a_parse_that_outlasts_the_deadline_is_abandoned(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(
        f'<li class="n"><a href="/m{n}">Meldung Nummer {n} aus der Stadt</a> 11.02.2019 x</li>'
        # 13 MB: about 7 s of parsing here, so well over the 3 s the source has, while its
        # fetch over loopback takes a fraction of them even on a loaded machine
        for n in range(150_000)
    )
    origin.set("/hostile/", f"<html><body><ul>{rows}</ul></body></html>")
    origin.set("/ok.rss", small_feed(1), content_type="application/rss+xml")
    config = write_sources(
        tmp_path,
        f"  - id: hostile\n    title: Hostile\n    url: {origin.url('/hostile/')}\n"
        "    html: auto\n"
        f"  - id: ok\n    title: OK\n    url: {origin.url('/ok.rss')}\n",
        defaults="  timeout: 3s\n  max_bytes: 20MB\n",
    )
    asyncio.run(work.warm_up())
    workers = descendants(os.getpid())
    assert main(["refresh", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "hostile                  failed: parsing took longer than" in out
    assert "; abandoned" in out
    assert "ok                       new: 1 new" in out
    # the worker that held the parse was ended and another took its place
    after = descendants(os.getpid())
    assert workers - after, "no worker was ended"
    assert after - workers, "the ended worker was not replaced"
