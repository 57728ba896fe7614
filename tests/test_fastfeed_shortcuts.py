"""The fast path's shortcuts against the plain steps they skip: its test whether a summary's
HTML is plain, and feedparser's guess whether text is HTML, give the same answers as when
every '<' was read by the full tag expression."""

from __future__ import annotations

import os
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed.extract import fastfeed
from test_fastfeed import _PIECES, BASE

EXAMPLES = int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000"))
_MARKUP = re.compile(r"<")

_MORE_PIECES = ["<p>", "</p>", "<P>", "</B>", "<o:p>", "</o:p>", "<p >", "<p/>", "<br/>", "<br>"]
_MORE_PIECES += ["< p>", "<3", "<", ">", "</>", "<!--", "-->", "<!-- a -->", "<?x?>", "<!x>"]
_MORE_PIECES += ["<p1>", "<h1>", "<x-y>", "<blink>", "</blink>", "<a href=x>", "text", " ", "\n"]
_MORE_PIECES += ["&lt;p&gt;", "'", '"']
_MORE = st.sampled_from(_MORE_PIECES)
fragments = st.lists(_PIECES | _MORE, max_size=14).map("".join)


def _html_not_plain_by_every_tag(fragment: str, base: str) -> str | None:
    """fastfeed._html_not_plain as it read every '<' with the full tag expression."""
    for match in fastfeed._SHORT_TAG.finditer(fragment):
        if match.group(1) not in fastfeed._VOID:
            return f"short tag <{match.group(1)}/>"
    if not fastfeed._references_plain(fragment):
        return "reference"
    position = 0
    for opening in _MARKUP.finditer(fragment):
        start = opening.start()
        if start < position:
            continue
        if fragment.startswith("<!--", start):
            comment = fastfeed._COMMENT.match(fragment, start)
            if comment is None:
                return "comment"
            position = comment.end()
            continue
        following = fragment[start + 1 : start + 2]
        if following == "/" or following.isalpha():
            tag = fastfeed._TAG.match(fragment, start)
            if tag is None:
                return "tag syntax"
            if "&#39;" in tag.group(0) or "&#34;" in tag.group(0):
                return "&#39; or &#34; in a tag"
            if tag.group(2).lower() not in fastfeed._SAFE_TAGS:
                return f"tag <{tag.group(2).lower()}>"
            problem = fastfeed._attributes_not_plain(tag.group(3), base)
            if problem:
                return problem
            position = tag.end()
        elif following in ("!", "?"):
            return "declaration"
    return None


def _looks_like_html_by_search(text: str) -> bool:
    if not (fastfeed._CLOSE_TAG.search(text) or fastfeed._ANY_REFERENCE.search(text)):
        return False
    names = fastfeed._TAG_NAME.findall(text)
    if any(t.lower() not in fastfeed._FEEDPARSER_HTML_ELEMENTS for t in names):
        return False
    entities = fastfeed._NAMED_REFERENCE.findall(text)
    return all(e in fastfeed.html.entities.entitydefs for e in entities)


@settings(max_examples=EXAMPLES, deadline=None)
@given(fragments)
@example("<p>a</p><p>b <a href='/programm-1.html'>c</a>.</p>")
@example("<P>a</P><BLINK>")
@example("<p title='<blink>'>a</p>")
@example("<!-- <blink> --><p>")
@example("a < b <3 <p>")
@example('<P>a &amp; b&nbsp;&lt;c&gt; &quot;d&quot;</P><a href="/x.html">e</a><BR>')
@example("<p>a</p><a href='https://e.example/a'>b</a><a href=''>c</a>")
@example("<a href='a//b'>x</a><a href='x?'>y</a><a href='x?#'>z</a>")
@example("<\u017ftrong>a</strong><a href='/x' >b</a><a  href='/y'>c</a>")
@example("<p>a &amp b &copy; <o:p>c</o:p> <br/></p>")
def test_plain_html_is_found_as_by_reading_every_tag(fragment: str) -> None:
    assert fastfeed._html_not_plain(fragment, BASE) == _html_not_plain_by_every_tag(fragment, BASE)


@settings(max_examples=EXAMPLES, deadline=None)
@given(fragments)
@example("AT&T")
@example("a </b> c")
@example("plain text")
def test_html_is_guessed_as_feedparser_guesses(text: str) -> None:
    assert fastfeed._looks_like_html(text) == _looks_like_html_by_search(text)


_C1 = re.compile("[\x80-\x9f]")


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(st.characters(max_codepoint=0x2FF) | st.sampled_from("\x80\x9f\xa0\xc2\u201e")))
@example("caf\u00e9 \u0080")
@example("\u00c2\u00a0 \u00c2")
@example("\ud800 \x85")
def test_c1_controls_are_found_as_by_searching_the_text(text: str) -> None:
    assert fastfeed._has_c1(text) == (_C1.search(text) is not None)
