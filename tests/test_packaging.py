"""The install and the test command: runtime without test tools, no reinstall when nothing
changed, no packaging deprecation warnings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
TEST_ONLY = ("pytest", "hypothesis", "mypy", "ruff", "playwright", "types-", "lxml-stubs")


def test_runtime_dependencies_hold_no_test_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert not [d for d in runtime if d.startswith(TEST_ONLY)], runtime
    extras = project["optional-dependencies"]
    assert any(d.startswith("playwright") for d in extras["test"])
    assert extras["dev"] == ["civicfeed[test]"]  # the old name still installs the test tools
    assert project["license"] == "MIT"  # an SPDX string: no setuptools deprecation warning


def _fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """scripts/test.sh and pyproject.toml beside a .venv whose python only records its
    arguments, so the script's decisions can be watched without installing anything."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    calls = tmp_path / "calls.txt"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    python.chmod(0o755)
    return tmp_path, calls


def _run(checkout: Path) -> subprocess.CompletedProcess[str]:
    # an index that cannot be reached: any install attempt would show up in calls.txt
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/"}
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "test.sh"), "-q", "tests/x.py"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_test_command_installs_only_when_pyproject_changed(tmp_path: Path) -> None:
    checkout, calls = _fake_checkout(tmp_path)
    first = _run(checkout)
    assert first.returncode == 0, first.stderr
    lines = calls.read_text().splitlines()
    assert lines == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -e .[test]",
        "-m pytest -q tests/x.py",
    ]
    calls.unlink()
    again = _run(checkout)
    assert again.returncode == 0
    assert calls.read_text().splitlines() == ["-m pytest -q tests/x.py"]  # offline from here
    calls.unlink()
    with (checkout / "pyproject.toml").open("a") as out:
        out.write("\n# changed\n")
    _run(checkout)
    assert "-m pip install --quiet -e .[test]" in calls.read_text().splitlines()


def _browser_tests(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """tests/test_browser.py in a pytest of its own, with no Chromium to be found."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-rs",
            "-q",
            str(ROOT / "tests" / "test_browser.py"),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "CIVICFEED_CHROMIUM": str(tmp_path / "no-chromium-here"),
            "CIVICFEED_REQUIRE_BROWSER": "",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_browser_tests_are_skipped_not_failed_for_a_user_without_chromium(tmp_path: Path) -> None:
    done = _browser_tests(tmp_path, CIVICFEED_BROWSER_AS_USER="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^4 skipped in ", done.stdout, re.M), done.stdout  # none passed
    assert "Chromium is needed for the browser tests: apt-get install chromium" in done.stdout


def test_without_chromium_root_and_ci_fail_the_browser_tests(tmp_path: Path) -> None:
    for env in ({}, {"CIVICFEED_BROWSER_AS_USER": "1", "CIVICFEED_REQUIRE_BROWSER": "1"}):
        if not env and os.geteuid() != 0:
            continue  # only root can install it, so only root fails without it
        done = _browser_tests(tmp_path, **env)
        assert done.returncode == 1, done.stdout
        assert re.search(r"^4 errors in ", done.stdout, re.M), done.stdout


def test_the_package_version_is_the_projects() -> None:
    from importlib.metadata import version

    import civicfeed

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert civicfeed.__version__ == project["version"] == version("civicfeed")
