"""scrub, the renderers' last guard: a story is checked by one search over all its strings,
and whatever XML cannot carry, in any field of the story or of any copy of it, is removed
exactly as strip_controls removes it from that field alone."""

from __future__ import annotations

import gc
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicfeed import xmlsafe
from civicfeed.dedup import Story
from civicfeed.models import Entry
from civicfeed.render.model import FeedInfo
from civicfeed.xmlsafe import is_xml_safe, scrub, strip_controls
from store.builders import make_entry

MOMENT = datetime(2026, 6, 1, 8, tzinfo=UTC)
TEXTS = ("id", "source_id", "title", "link", "summary", "guid", "content")
# one of each kind: C0 and C1 controls, a lone surrogate, a BMP non-character, non-characters
# beyond the BMP (in text that holds other characters beyond it, which are kept)
UNSAFE = (
    "\x0b",
    "\x1b",
    "\x85",
    "\ud83d",
    "\udc00",
    "\ufdd0",
    "\ufffe",
    "\U0001fffe",
    "\U0010ffff",
)


def _story(entry: Entry, *origins: Entry) -> Story:
    return Story(id=entry.id, entry=entry, origins=origins, updated=MOMENT)


def _entry(source: str = "a") -> Entry:
    return make_entry(
        "urn:x:1",
        source,
        guid="g-1",
        link="https://example.org/ä/1",
        title="Grüße 😀 aus Herne",
        content="<p>Artikel</p>",
        published=MOMENT,
    )


def _expected(story: Story) -> Story:
    """The story with strip_controls applied to every string, field by field."""

    def clean(entry: Entry) -> Entry:
        changes = {
            name: strip_controls(value)
            for name in TEXTS
            if isinstance(value := getattr(entry, name), str)
        }
        return replace(entry, **changes)

    return Story(
        id=strip_controls(story.id),
        entry=clean(story.entry),
        origins=tuple(clean(copy) for copy in story.origins),
        updated=story.updated,
    )


def _strings(story: Story) -> list[str]:
    found = [story.id]
    for copy in (story.entry, *story.origins):
        found += [v for f in fields(copy) if isinstance(v := getattr(copy, f.name), str)]
    return found


def test_a_safe_story_comes_back_as_itself() -> None:
    story = _story(_entry(), _entry("b"))
    assert scrub(story) is story
    assert scrub([story])[0] is story


@pytest.mark.parametrize("bad", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("where", ["entry", "origin"])
def test_an_unsafe_character_in_any_field_of_any_copy_is_removed(
    bad: str, name: str, where: str
) -> None:
    entry, origin = _entry(), _entry("b")
    if where == "entry":
        entry = replace(entry, **{name: f"{getattr(entry, name)}{bad}ü"})
    else:
        origin = replace(origin, **{name: f"ü{bad}{getattr(origin, name)}"})
    story = _story(entry, origin)
    scrubbed = scrub(story)
    assert scrubbed == _expected(story) != story
    assert all(is_xml_safe(text) for text in _strings(scrubbed))
    assert "😀" in scrubbed.entry.title  # what XML can carry beyond the BMP stays
    assert scrub([story]) == [scrubbed]


def test_an_unsafe_story_id_is_repaired() -> None:
    story = replace(_story(_entry()), id="urn:x:\x01")
    assert scrub(story).id == "urn:x:"


def test_halves_of_a_surrogate_pair_in_two_fields_are_both_removed() -> None:
    # in one string they would still be two lone surrogates, never one character
    entry = replace(_entry(), title="Titel\ud83d", summary="\ude00<p>Text</p>")
    scrubbed = scrub(_story(entry))
    assert (scrubbed.entry.title, scrubbed.entry.summary) == ("Titel", "<p>Text</p>")


def test_a_feed_description_with_an_unsafe_character_is_repaired() -> None:
    info = FeedInfo(id="s", title="Quelle\x0c", description="", home="https://example.org/")
    assert scrub(info).title == "Quelle"
    assert scrub(info) == replace(info, title="Quelle")


_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)


@given(st.lists(_text, min_size=len(TEXTS) * 2, max_size=len(TEXTS) * 2))
def test_scrub_of_a_story_is_strip_controls_of_each_of_its_strings(texts: list[str]) -> None:
    first, second = texts[: len(TEXTS)], texts[len(TEXTS) :]
    entry = replace(_entry(), **dict(zip(TEXTS, first, strict=True)))
    origin = replace(_entry("b"), **dict(zip(TEXTS, second, strict=True)))
    story = _story(entry, origin)
    scrubbed = scrub(story)
    assert scrubbed == _expected(story)
    assert (scrubbed is story) == all(is_xml_safe(text) for text in _strings(story))


def test_a_story_found_safe_is_remembered_while_it_lives_only() -> None:
    story = _story(_entry())
    scrub(story)
    key = id(story)
    assert xmlsafe._is_marked(story)
    del story
    gc.collect()
    assert key not in xmlsafe._SAFE


# every character of one and two bytes in UTF-8, every one led by 0xED (surrogates) and 0xEF
# (BMP non-characters), the first and last 32 of each plane beyond the BMP
_POINTS = [
    *range(0x800),
    *range(0xD000, 0x10000),
    *(plane + low for plane in range(0x10000, 0x110000, 0x10000) for low in range(32)),
    *(plane + 0xFFE0 + low for plane in range(0x10000, 0x110000, 0x10000) for low in range(32)),
]


def test_a_character_is_judged_the_same_in_short_and_in_long_text() -> None:
    # long text is tested as UTF-8 bytes, short text by the search of the class: both say
    # what the class says, for each character in every position
    pad = "ä" * xmlsafe._LONG
    wrong = [
        f"U+{point:04X}"
        for point in _POINTS
        for char in [chr(point)]
        for text in (char, pad + char, char + pad, f"a{char}€{pad}")
        if xmlsafe._clean(text) != (xmlsafe._CONTROL.search(text) is None)
    ]
    assert wrong == []


def test_one_unsafe_story_among_many_is_repaired_and_the_others_come_back_as_they_are() -> None:
    safe = [_story(replace(_entry(), id=f"urn:x:{n}", summary="ü" * 100)) for n in range(5)]
    bad = _story(replace(_entry(), id="urn:x:bad", summary="<p>Text\x85</p>" + "ü" * 100))
    stories = [*safe[:2], bad, *safe[2:]]
    scrubbed = scrub(stories)
    assert scrubbed[2] == _expected(bad) != bad
    assert all(new is old for new, old in zip(scrubbed[:2] + scrubbed[3:], safe, strict=True))
    assert scrub(tuple(stories)) == tuple(scrubbed)


@given(st.lists(st.lists(_text, min_size=len(TEXTS), max_size=len(TEXTS)), max_size=8))
def test_scrub_of_stories_is_scrub_of_each(texts: list[list[str]]) -> None:
    stories = [
        _story(replace(_entry(), **dict(zip(TEXTS, strings, strict=True)))) for strings in texts
    ]
    scrubbed = scrub(stories)
    assert scrubbed == [_expected(story) for story in stories]
    assert (scrubbed is stories) == all(
        is_xml_safe(text) for story in stories for text in _strings(story)
    )
