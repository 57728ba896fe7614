"""Config edge cases beyond the data cases in tests/cases/config: reserved ids against what a
real run writes, `run` with a duration over a year, and an alias bomb in a real process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.config import RESERVED_IDS
from origin import Origin

CASES = Path(__file__).parent / "cases" / "config"


def test_reserved_ids_cover_everything_else_the_output_folder_holds(
    origin: Origin, project: Callable[..., Path]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    rules = "{item: article.news-teaser, title: h3, date: .news-date, link: a.more}"
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        f"    max_entries: 2\n    html: {rules}\n",
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [herne]\n",
    )
    assert main(["refresh", "--config", str(config)]) == 0
    output = config.parent / "feeds"
    assert (output / "archive" / "herne" / "1.atom").is_file()  # archive pages are written
    others = {path.name.split(".")[0] for path in output.iterdir()} - {"herne", "alle"}
    assert others == {"index", "feeds", "feed", "archive"}
    assert others <= RESERVED_IDS


def test_run_refuses_a_duration_over_a_year(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(
        "  - id: herne\n    title: Herne\n    url: https://www.herne.de/\n    every: 99999999999d\n"
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:9: sources[0].every: '99999999999d' is longer than a year" in err
    assert "Traceback" not in err
    assert not (config.parent / ".civicfeed").exists()


def test_an_alias_bomb_is_refused_at_once_in_a_real_process(tmp_path: Path) -> None:
    config = tmp_path / "sources.yaml"
    config.write_bytes((CASES / "alias-bomb.yaml").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "civicfeed", "refresh", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,  # today's loader never returns; the refusal takes well under a second
    )
    assert done.returncode == 2
    assert "once its aliases (*name) are expanded; refused" in done.stderr
    assert "Traceback" not in done.stderr
