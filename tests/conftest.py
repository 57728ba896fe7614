from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from origin import Origin

BASE = "https://feeds.example.org/"


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin().start()
    try:
        yield server
    finally:
        server.stop()


def write_sources(
    folder: Path,
    sources: str,
    feeds: str = "",
    top: str = "",
    defaults: str = "  timeout: 5s\n",
    base_url: str | None = BASE,
) -> Path:
    """Writes folder/sources.yaml: Berlin time, ``base_url`` (BASE; None: none), these
    ``defaults`` (a 5 s timeout; "": no defaults block), sources and feeds (with their
    ``feeds:`` line); ``top``: further top-level lines. The one writer of test
    configurations."""
    path = folder / "sources.yaml"
    head = "timezone: Europe/Berlin\n" + (f"base_url: {base_url}\n" if base_url else "")
    block = f"defaults:\n{defaults}" if defaults else ""
    path.write_text(f"{head}{top}{block}sources:\n{sources}\n{feeds}", encoding="utf-8")
    return path


def civicfeed(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``civicfeed ARGS`` in a process of its own, its output captured as text; a process
    still running after ``timeout`` seconds fails the test (a guard, not a measure)."""
    return subprocess.run(
        [sys.executable, "-m", "civicfeed", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail, saying ``what``, if it does not within
    ``seconds`` (a guard against a hung test, never a measure of speed)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g}s: {what}")
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (the parsing workers hang below a fork server)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """write_sources into tmp_path."""

    def write(sources: str, feeds: str = "", top: str = "") -> Path:
        return write_sources(tmp_path, sources, feeds, top)

    return write


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server (benchmarks/pgserver.py); without one the test is skipped, saying why."""
    from benchmarks import pgserver

    try:
        context = pgserver.server()
        url = context.__enter__()
    except pgserver.Unavailable as exc:
        if os.environ.get("CIVICFEED_REQUIRE_POSTGRES"):
            pytest.fail(f"CIVICFEED_REQUIRE_POSTGRES is set but there is no server: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped after the test."""
    from benchmarks import pgserver

    with pgserver.database(postgres_server) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from figures import FIGURES

    if FIGURES:
        terminalreporter.section("figures")
        for name, text in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {text}")
