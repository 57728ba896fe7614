"""Rendering as data: every case in tests/cases/render/ renders to exactly the bytes stored
beside its input (tests/render_cases.py describes the cases and writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from figures import record
from render_cases import FILES, case_dirs, generated, load, render_case

CASES = case_dirs()


def test_the_cases_are_there() -> None:
    # every generated case is stored (a case added to the generator needs its files written)
    assert sorted(generated()) == sorted(folder.name for folder in CASES)
    for folder in CASES:
        assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "input.json"])
    record("render cases", f"{len(CASES)} cases, {len(CASES) * len(FILES)} files")


@pytest.mark.parametrize("folder", CASES, ids=[folder.name for folder in CASES])
def test_renders_exactly_the_stored_bytes(folder: Path) -> None:
    rendered = render_case(load(folder))
    assert sorted(rendered) == sorted(FILES)
    for name, data in rendered.items():
        expected = (folder / name).read_bytes()
        assert data.decode("utf-8") == expected.decode("utf-8"), f"{folder.name}/{name}"
        assert data == expected


@pytest.mark.parametrize("folder", CASES, ids=[folder.name for folder in CASES])
def test_the_stored_feeds_are_well_formed(folder: Path) -> None:
    for name in ("feed.rss", "feed.atom"):
        etree.fromstring((folder / name).read_bytes())
