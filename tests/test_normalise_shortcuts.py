"""The normaliser's shortcuts against the plain steps they skip: the same results for
generated text."""

from __future__ import annotations

import os
import re
import unicodedata

import nh3
from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed.normalise import text
from civicfeed.xmlsafe import strip_controls

EXAMPLES = int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000"))
_SPACE = re.compile(r"[\s\u2028\u2029]+")
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")

# ASCII text with every kind of white space and control, and some that is not ASCII
_PIECES = ["a", "B", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x7f"]
_PIECES += ["\x85", "\xa0", "\u00ad", "\u200b", "e\u0301", "é", "\u2028", "\ufeff"]
texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join) | st.text(max_size=40)


def _clean_text_unhurried(value: str, limit: int) -> tuple[str, bool]:
    value = value[: limit * 8]
    value = unicodedata.normalize("NFC", _INVISIBLE.sub("", strip_controls(value)))
    value = _SPACE.sub(" ", value).strip()
    if len(value) <= limit:
        return value, False
    head = value[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip() + "…", True


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts, st.sampled_from([5, 20, text.MAX_TITLE]))
@example(" a\x1c\x1fb\x00 ", 300)
@example("e\u0301\u00ad", 300)
def test_clean_text_of_ascii_skips_only_what_changes_nothing(value: str, limit: int) -> None:
    assert text.clean_text(value, limit) == _clean_text_unhurried(value, limit)


# --- the sanitiser: one per document's address instead of one per call ----------------------

_HTML = [
    "<p>",
    "</p>",
    "text",
    " & ",
    "&amp;",
    "&nbsp;",
    "\xa0",
    ">",
    "<",
    '<a href="../x.html?a=1&amp;b=2">',
    "<a href='/y'>",
    '<a href="javascript:alert(1)">',
    '<a href="mailto:a@b.example">',
    '<a href="//other.example/z">',
    '<a href="ftp://f.example/">',
    "</a>",
    '<img src="i.png" onerror="x()">',
    "<script>alert(1)</script>",
    "<style>p{}</style>",
    "<iframe src='https://v.example'></iframe>",
    "<svg><circle/></svg>",
    "<nav>n</nav>",
    "<map><area href='/m'></map>",
    "<table><tr><td>c</td></tr></table>",
    "<!-- c -->",
    "<b>",
    "</i>",
    "<h2>",
    '<div style="color:red" class="c" id="i">',
    "</div>",
    "\r\n",
]
BASES = ["https://city.example/news/page.html?x=1", "http://127.0.0.1:8000/s4/", "", "x y"]
fragments = st.lists(st.sampled_from(_HTML), max_size=14).map("".join) | st.text(max_size=30)


def _outcome(clean: object, *args: str) -> tuple[str, str]:
    try:
        return "value", clean(*args)  # type: ignore[operator]
    except ValueError as exc:
        return "ValueError", str(exc)


def _clean_by_call(fragment: str, base: str) -> str:
    return nh3.clean(
        fragment,
        tags=text._TAGS,
        clean_content_tags=text._DROP_WITH_CONTENT,
        url_schemes=text._SAFE_SCHEMES,
        url_relative=("rewrite_with_base", base),
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(fragments, st.sampled_from(BASES))
@example("<p>a <a href='../x'>b</a></p>", BASES[0])
@example("<a href='x'>a</a>", "x y")
def test_summaries_are_sanitised_as_by_a_sanitiser_built_per_call(fragment: str, base: str) -> None:
    assert _outcome(text._clean, fragment, base) == _outcome(_clean_by_call, fragment, base)


@settings(max_examples=EXAMPLES, deadline=None)
@given(fragments)
def test_titles_from_summaries_are_the_text_a_sanitiser_built_per_call_leaves(
    fragment: str,
) -> None:
    by_call = nh3.clean(fragment, tags=set(), clean_content_tags=text._DROP_WITH_CONTENT)
    assert text._text_only().clean(fragment) == by_call


_SUMMARY_PIECES = ["<p>", "</p>", "a &amp; b", "&#x0B;", "&#27;", "&#xFFFE;", "&#1;", "ä", "\x0b"]
_LINKS = st.sampled_from([None, "/a", "/a\x0b/b", "https://e.example/%01", "x y"])


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    texts,
    st.lists(st.sampled_from(_SUMMARY_PIECES), max_size=8).map("".join) | st.none(),
    _LINKS,
    texts | st.none(),
)
@example("", None, "https://e.example/%01", None)
@example("t", "<p>a &#x0B; b</p>", "/a", "g\x0b")
def test_candidates_are_whole_as_scrub_makes_them(
    title: str, summary: str | None, link: str | None, guid: str | None
) -> None:
    """A candidate normalise returns without scrub's walk is one scrub gives back as it is."""
    from datetime import UTC

    from civicfeed.models import Candidate, Item
    from civicfeed.normalise import normalise
    from civicfeed.xmlsafe import is_xml_safe, scrub

    item = Item(title=title, link=link, date_text=None, summary_html=summary, guid=guid)
    candidate, _ = normalise(item, source_id="s", base_url="https://e.example/d/", zone=UTC)
    if candidate is None:
        return
    assert scrub(candidate) == candidate
    # made without the frozen __init__: the same fields in the same order as with it
    made = Candidate(**vars(candidate))
    assert list(vars(candidate).items()) == list(vars(made).items())
    assert candidate == made
    assert hash(candidate) == hash(made)
    strings = (candidate.title, candidate.link, candidate.summary, candidate.guid)
    assert all(is_xml_safe(s) for s in strings if s)
