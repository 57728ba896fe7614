"""Rendering as data: every case in tests/cases/render/ renders to exactly the bytes stored
beside its input (tests/render_cases.py describes the cases and writes them)."""

from __future__ import annotations

import os
from pathlib import Path

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from civicfeed.render import jsonfeed
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


def lxml_text(fragment: str) -> str:
    return " ".join(
        lxml.html.fragment_fromstring(fragment, create_parent="div").text_content().split()
    )


TOKENS = (
    *("<p>", "</p>", "<b>", "</b>", "<br>", "<br/>", "<BR />", "<P CLASS=x>", "<o:p>"),
    *("<a href='x'>", '<a href="y&amp;z">', "</a>", "<img alt=x>", "<img src=x alt='Bild'>"),
    *("<div class=a b>", "<ul><li>", "</li>", "<table><tr><td>", "</td>", "<p =x>"),
    *("<a title=it's>", '<a title="a>b">', "<a\nhref=x>", '<a b"c">', "< p>", "</ p>"),
    *("<html>", "<body>", "<title>", "<head>", "<script>", "</script>", "<style>"),
    *("<!-- c -->", "<!--", "-->", "<![CDATA[", "]]>", "<?x?>", "<!DOCTYPE html>"),
    *("Text", "mehr Text", " ", "  ", "\n", "\t", "\r\n", "Ä", "\u00a0", "\u200b", "🎉"),
    *("&amp;", "&nbsp;", "&euro", "&#169;", "&#0;", "&notit;", "&", "<", ">", '"', "'", "="),
    *("1 < 2", "a>b", "<3", "<ä>", "<a", "</", "/>", "<x-y z=1>", "<a href=x=y>"),
)


@settings(max_examples=int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12))
def test_a_summary_as_plain_text_is_what_lxml_reads(tokens: list[str]) -> None:
    # JSON Feed's summary of an item with an article: plain text; sanitised summaries are
    # read without a parser, and anything else goes to lxml; both ways give the same text
    fragment = "".join(tokens)
    try:
        expected = lxml_text(fragment)
    except (AssertionError, lxml.etree.ParserError):  # fragment_fromstring cannot read it
        assert isinstance(jsonfeed._text(fragment), str)
    else:
        assert jsonfeed._text(fragment) == expected


def test_plain_text_of_sanitised_summaries_needs_no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parser(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(jsonfeed.lxml.html, "fragment_fromstring", no_parser)
    summary = '<p>Die <b>Stadt</b> informiert.</p><p><a href="https://x.example/?a=1">Mehr</a></p>'
    assert jsonfeed._text(summary) == "Die Stadt informiert.Mehr"
