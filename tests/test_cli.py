"""The command line as a person meets it: a closed pipe ends quietly, and the help is quick."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from origin import Origin
from test_service import write_config


def _to_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run civicfeed with stdout a pipe whose reading end is already closed, as in
    `civicfeed … | head` once head has exited."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "civicfeed", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("command", ["check", "status"])
def test_output_to_a_closed_pipe_ends_quietly(command: str, origin: Origin, tmp_path: Path) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    config = str(write_config(origin, tmp_path))
    args = (
        ["check", "herne", "--config", config]
        if command == "check"
        else ["status", "--config", config]
    )
    done = _to_closed_pipe(*args)
    assert done.stderr == b""  # no BrokenPipeError traceback, no "Exception ignored"
    assert done.returncode == 141  # as a shell reports a command ended by SIGPIPE


def test_help_and_version_start_fast() -> None:
    """A benchmark, not an assertion on time: prints the figures (the goal is under 0.25 s)."""
    for args in (["--version"], ["--help"]):
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "civicfeed", *args], capture_output=True, check=True
            )
            timings.append(time.perf_counter() - started)
        assert done.stdout.startswith(b"civicfeed" if args == ["--version"] else b"usage:")
        print(
            f"\ncivicfeed {' '.join(args)}: best {min(timings):.3f}s of 5, "
            f"median {sorted(timings)[2]:.3f}s"
        )
    # what makes it fast, checked directly: the help loads none of the heavy libraries
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom civicfeed.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = {'httpx', 'lxml', 'pydantic', 'yaml', 'feedparser', 'starlette', "
            "'uvicorn', 'apscheduler', 'asyncio', 'prometheus_client'}\n"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}), file=sys.stderr)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stderr.strip() == "[]"
