"""Appending a source to sources.yaml: every byte outside the new block stays as it was.

tests/cases/yamledit/<case>.in.yaml is a configuration file, <case>.out.yaml the file with
the same new source appended.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from civicfeed.errors import ConfigError
from civicfeed.yamledit import append_source

CASES = Path(__file__).parent / "cases" / "yamledit"
SOURCE = {
    "id": "neu",
    "title": "Neu: Meldungen",
    "url": "https://neu.example/aktuelles/",
    "html": {"item": "ul.news > li", "title": "h2"},
}
COMMENT = "added by `civicfeed add` on 2026-12-01"


@pytest.mark.parametrize(
    "case", sorted(p.name.removesuffix(".in.yaml") for p in CASES.glob("*.in.yaml"))
)
def test_append_source(case: str) -> None:
    before = (CASES / f"{case}.in.yaml").read_bytes().decode("utf-8")
    expected = (CASES / f"{case}.out.yaml").read_bytes().decode("utf-8")
    after = append_source(before, SOURCE, comment=COMMENT, where=f"{case}.in.yaml")
    assert after == expected


def test_a_flow_style_list_is_refused_and_named() -> None:
    with pytest.raises(ConfigError, match=r"sources.*block list"):
        append_source(
            "sources: [{id: a, title: A, url: 'https://a.example/'}]\n",
            SOURCE,
            comment=COMMENT,
            where="s.yaml",
        )
