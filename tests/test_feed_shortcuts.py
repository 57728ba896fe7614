"""The feed conversion's shortcuts against the plain steps they skip."""

from __future__ import annotations

import calendar
import os
import time
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed.extract import feed

EXAMPLES = int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000"))


def _plain(parsed: time.struct_time) -> datetime | str:
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (ValueError, OverflowError) as exc:
        return type(exc).__name__


def _made(parsed: time.struct_time) -> datetime | str:
    try:
        return feed._utc(parsed)
    except (ValueError, OverflowError) as exc:
        return type(exc).__name__


fields = st.tuples(
    st.integers(-1, 10001),
    st.integers(-1, 14),
    st.integers(-1, 33),
    st.integers(-1, 25),
    st.integers(-1, 61),
    st.integers(-1, 62),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.integers(-62135596800, 253402300799).map(time.gmtime)
    | fields.map(lambda f: time.struct_time((*f, 0, 1, 0)))
)
@example(time.struct_time((2026, 2, 30, 12, 0, 0, 0, 1, 0)))
@example(time.struct_time((2026, 12, 31, 23, 59, 60, 0, 1, 0)))
@example(time.struct_time((9999, 12, 31, 23, 59, 60, 0, 1, 0)))
@example(time.struct_time((0, 1, 1, 0, 0, 0, 0, 1, 0)))
def test_entry_times_are_made_as_from_their_timestamp(parsed: time.struct_time) -> None:
    made = _made(parsed)
    assert made == _plain(parsed)
    if isinstance(made, datetime):
        assert made.tzinfo is UTC
        assert made.fold == 0


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": st.sampled_from(["", "T", "a <b>c</b>"]),
            "title_detail": st.sampled_from([{"type": "text/html"}, {"type": "text/plain"}]),
            "link": st.sampled_from(["", "https://e.example/a"]),
            "id": st.sampled_from(["", "g"]),
            "summary": st.sampled_from(["", "<p>s</p>"]),
            "content": st.just([{"type": "text/html", "value": "<p>c</p>"}]),
            "published": st.just("Tue, 13 Jan 2026 19:00:00 +0000"),
            "published_parsed": st.just(time.gmtime(1768330800)),
            "updated_parsed": st.just(time.struct_time((2026, 2, 30, 0, 0, 0, 0, 1, 0))),
        },
    )
)
def test_items_are_made_as_the_dataclass_makes_them(entry: dict[str, object]) -> None:
    """An entry's Item, made without the frozen __init__: the fields in the same order."""
    from civicfeed.models import Item

    item = feed._xml_item(entry)
    assert item is not None
    made = Item(**vars(item))
    assert list(vars(item).items()) == list(vars(made).items())
    assert item == made
    assert hash(item) == hash(made)
