"""Summaries without markup are not parsed: what the sanitiser would give is written
directly, and must be exactly what it gives."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from civicfeed.normalise.text import _clean, sanitise_html
from civicfeed.xmlsafe import strip_controls

BASE = "https://city.example/news/"
_TRICKY = "\r\n\t >\"'=`/\\\xa0\u2028\u00ad\ufeff\x00\x0b\x85\ud800\ufffe#;é€𝄞 "


@given(st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(), max_size=80))
@example("a > b\r\nc\rd\xa0e")
@example("  \xa0 ")
@example("\r")
def test_text_without_markup_is_given_back_as_the_sanitiser_gives_it(text: str) -> None:
    text = text.replace("<", "").replace("&", "")
    got, cut = sanitise_html(text, BASE)
    assert not cut
    assert got == _clean(strip_controls(text), BASE).strip()


@pytest.mark.parametrize("text", ["a &amp; b", "a < b", "<p>x</p>", "&gt;", "x &"])
def test_markup_and_references_still_go_through_the_sanitiser(text: str) -> None:
    assert sanitise_html(text, BASE)[0] == _clean(text, BASE).strip()
