"""Detection helpers on their own: what the listing corpus does not reach."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType

import pytest

from civicfeed.extract import detect
from civicfeed.extract.detect import read_date, strip_common_prefix


def test_a_shared_label_is_removed_and_a_shared_word_is_not() -> None:
    titles = ["mehr zur Meldung: Sprachkurse", "mehr zur Meldung:  Broschüre"]
    assert strip_common_prefix(titles) == [" Sprachkurse", " Broschüre"]
    assert strip_common_prefix(["Stadt Herne lädt ein", "Stadt Herne baut"]) == [
        "Stadt Herne lädt ein",
        "Stadt Herne baut",
    ]


class _TooMuchWork(Exception):
    pass


def _steps_in_detect(work: Callable[[], object], budget: int) -> tuple[object, int]:
    """``work()`` and how many lines of detect.py it ran; _TooMuchWork past ``budget``."""
    steps = 0

    def local(frame: FrameType, event: str, arg: object) -> object:
        nonlocal steps
        if event == "line":
            steps += 1
            if steps > budget:
                raise _TooMuchWork(f"more than {budget} steps")
        return local

    def calls(frame: FrameType, event: str, arg: object) -> object:
        return local if frame.f_code.co_filename == detect.__file__ else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        result = work()
    finally:
        sys.settrace(previous)
    return result, steps


@pytest.mark.parametrize("where", ["at the end", "after the label"])
def test_the_shared_prefix_of_long_titles_takes_work_linear_in_their_length(where: str) -> None:
    # issue 8: the prefix was shortened one character at a time, each time copying and
    # comparing it again: quadratic, a minute for two titles of two million characters. The
    # work is counted, not timed: the Python steps taken must stay far below one a character
    # (the characters themselves are compared by C, a block at a time).
    length = 200_000
    if where == "at the end":
        titles = ["Bekanntmachung: " + "x" * length + "a", "Bekanntmachung: " + "x" * length + "b"]
        expected = [" " + "x" * length + "a", " " + "x" * length + "b"]
    else:
        titles = ["Bekanntmachung: " + "x" * length, "Bekanntmachung: " + "y" * length]
        expected = [" " + "x" * length, " " + "y" * length]
    stripped, steps = _steps_in_detect(lambda: strip_common_prefix(titles), budget=length // 10)
    assert stripped == expected
    assert steps > 0  # the count saw the function run


def test_numeric_dates_with_slashes_are_read_in_the_order_given() -> None:
    assert read_date("Published: 2/10/2026", "mdy") == "2026-02-10"
    assert read_date("Published: 2/10/2026", "dmy") == "2026-10-02"
    # no order known: the text as it is, for the source's date_order to read
    assert read_date("Published: 2/10/2026", None) == "Published: 2/10/2026"
    assert read_date("11.02.2026", "mdy") == "11.02.2026"  # other forms are left as written
    assert read_date("13/13/2026", "mdy") is None
