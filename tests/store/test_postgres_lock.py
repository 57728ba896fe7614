"""One refresh at a time per PostgreSQL state, across processes: the refresh lock is an
advisory lock on the database, released by the server when its holder dies. And a state URL
the configuration cannot use is a configuration error with the file, the line and the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from civicfeed.cli import main
from origin import Origin


def _refresh(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_refresh_of_a_postgresql_state_waits_and_a_killed_one_releases_it(
    origin: Origin, postgres_url: str, project: Callable[..., Path]
) -> None:
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", delay=8.0)
    config = project(
        f"  - id: dortmund\n    title: Dortmund\n    url: {origin.url('/dortmund.rss')}\n"
        "    timeout: 30s\n",
        top=f"state: {postgres_url}\n",
    )
    holder = _refresh(config)
    try:
        deadline = time.monotonic() + 30
        while not origin.hits("/dortmund.rss"):  # the first refresh holds the lock now
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline, "the first refresh never started"
            time.sleep(0.05)
        second = _refresh(config, "--wait", "1s")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 3, out + err
        assert "is still running after 1s; giving up" in err
        assert "Traceback" not in err
        os.kill(holder.pid, signal.SIGKILL)  # its connection ends: the server drops the lock
        holder.wait(timeout=10)
        origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss")
        after = _refresh(config, "--wait", "20s")
        out, err = after.communicate(timeout=60)
        assert after.returncode == 0, out + err
        assert "dortmund" in out
        assert "new: " in out
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://db/civicfeed", "unknown state scheme 'mysql'"),
        ("sqlite:///", "sqlite:/// needs a file path"),
        ("postgresql://", "a postgresql:// state needs a host or a database name"),
    ],
)
def test_a_state_url_that_cannot_be_used_is_a_configuration_error(
    value: str, message: str, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(
        "  - id: a\n    title: A\n    url: http://127.0.0.1:9/a.rss\n", top=f"state: {value}\n"
    )
    assert main(["refresh", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:3: state: {message}" in err  # the file, the line, the key, the reason
