"""Detection helpers on their own: what the listing corpus does not reach."""

from __future__ import annotations

import time

from civicfeed.extract.detect import read_date, strip_common_prefix


def test_a_shared_label_is_removed_and_a_shared_word_is_not() -> None:
    titles = ["mehr zur Meldung: Sprachkurse", "mehr zur Meldung:  Broschüre"]
    assert strip_common_prefix(titles) == [" Sprachkurse", " Broschüre"]
    assert strip_common_prefix(["Stadt Herne lädt ein", "Stadt Herne baut"]) == [
        "Stadt Herne lädt ein",
        "Stadt Herne baut",
    ]


def test_two_titles_of_two_million_characters_share_their_prefix_in_linear_time() -> None:
    # issue 8: the prefix was shortened one character at a time, each time comparing the
    # whole title again: 60 s for these two. Linear, it is a few milliseconds; the bound
    # below is a hundred times that and still far under the quadratic time.
    shared = "Bekanntmachung: " + "x" * 2_000_000
    titles = [shared + "a", shared + "b"]
    started = time.process_time()
    stripped = strip_common_prefix(titles)
    assert time.process_time() - started < 5.0
    assert stripped == [" " + "x" * 2_000_000 + "a", " " + "x" * 2_000_000 + "b"]


def test_numeric_dates_with_slashes_are_read_in_the_order_given() -> None:
    assert read_date("Published: 2/10/2026", "mdy") == "2026-02-10"
    assert read_date("Published: 2/10/2026", "dmy") == "2026-10-02"
    # no order known: the text as it is, for the source's date_order to read
    assert read_date("Published: 2/10/2026", None) == "Published: 2/10/2026"
    assert read_date("11.02.2026", "mdy") == "11.02.2026"  # other forms are left as written
    assert read_date("13/13/2026", "mdy") is None
