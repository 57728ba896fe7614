"""The date parser, driven by tests/cases/dates.txt, and its properties."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from feedparser import datetimes as feedparser_dates
from hypothesis import assume, given
from hypothesis import strategies as st

from civicfeed.normalise import choose_date, parse_date
from figures import record

BERLIN = ZoneInfo("Europe/Berlin")
CASES = Path(__file__).parent / "cases" / "dates.txt"


def _cases() -> list[tuple[str, str]]:
    rows = []
    for line in CASES.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "=>" not in line:
            continue
        text, expected = line.split("=>")
        rows.append((text.strip(), expected.strip()))
    return rows


@pytest.mark.parametrize(("text", "expected"), _cases())
def test_date_cases(text: str, expected: str) -> None:
    # "mdy: ..." is read as a source with date_order: mdy reads it
    order, text = (
        ("mdy", text.removeprefix("mdy:").strip()) if text.startswith("mdy:") else ("dmy", text)
    )
    parsed = parse_date(text, BERLIN, order)
    if expected == "none":
        assert parsed is None
    else:
        assert parsed is not None
        assert parsed.tzinfo is not None
        want = datetime.fromisoformat(expected)
        assert parsed == want
        assert parsed.utcoffset() == want.utcoffset()


def test_date_without_time_is_that_day_in_the_configured_zone() -> None:
    parsed = parse_date("Meldung vom 11. Februar 2019", BERLIN)
    assert parsed is not None
    assert parsed.astimezone(UTC) == datetime(2019, 2, 10, 23, 0, tzinfo=UTC)
    assert parse_date("11. Februar 2019", UTC) == datetime(2019, 2, 11, tzinfo=UTC)


def test_leftmost_date_wins() -> None:
    text = "Meldung vom 04. Februar 2019: am Montag, 27. Februar 2019, im Rathaus"
    assert parse_date(text, BERLIN) == datetime(2019, 2, 4, tzinfo=BERLIN)


@given(st.text(max_size=300))
def test_never_raises_and_is_aware(text: str) -> None:
    parsed = parse_date(text, BERLIN)
    assert parsed is None or parsed.tzinfo is not None


@given(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2150, 1, 1)))
def test_round_trips_its_own_formats(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    assert parse_date(moment.isoformat(), BERLIN) == moment
    rfc822 = moment.strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert parse_date(rfc822, BERLIN) == moment
    german = moment.strftime("%d.%m.%Y %H:%M")
    assert parse_date(german, BERLIN) == moment.replace(second=0, tzinfo=BERLIN)


# --- against feedparser: any RFC 822 or ISO 8601 date with an offset it reads ---------------

_FIXED_NAMES = {"GMT": 0, "UT": 0, "Z": 0, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300}
_FIXED_NAMES |= {"MST": -420, "MDT": -360, "PST": -480, "PDT": -420}


def _offset_text(minutes: int, colon: bool) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{rest:02d}"


@st.composite
def dated_texts(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2199, 1, 1)))
    moment = moment.replace(microsecond=0)
    style = draw(st.sampled_from(["rfc822", "rfc822-name", "iso", "iso-space", "iso-z"]))
    minutes = draw(st.integers(min_value=-12 * 60, max_value=14 * 60))
    seconds = draw(st.booleans())
    clock = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    if style == "rfc822":
        weekday = draw(st.sampled_from(["", moment.strftime("%a, ")]))
        return f"{weekday}{moment.strftime('%d %b %Y')} {clock} {_offset_text(minutes, False)}"
    if style == "rfc822-name":
        name = draw(st.sampled_from(sorted(_FIXED_NAMES)))
        return f"{moment.strftime('%a, %d %b %Y')} {clock} {name}"
    if style == "iso-z":
        return f"{moment.strftime('%Y-%m-%d')}T{clock}Z"
    separator = "T" if style == "iso" else " "
    space = "" if style == "iso" else " "
    # ISO 8601 with an offset without a colon: feedparser ignores such an offset (below)
    return f"{moment.strftime('%Y-%m-%d')}{separator}{clock}{space}{_offset_text(minutes, True)}"


def feedparser_reading(text: str) -> datetime | None:
    parsed = feedparser_dates._parse_date(text)
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


@given(dated_texts())
def test_every_date_with_an_offset_that_feedparser_reads_is_read_the_same(text: str) -> None:
    theirs = feedparser_reading(text)
    assume(theirs is not None)
    # the own parser alone (listings), and the choice made for feed items
    assert parse_date(text, BERLIN) == theirs, text
    assert choose_date(text, theirs, BERLIN) == theirs, text
    assert choose_date(text, theirs, BERLIN, "mdy") == theirs, text


@pytest.mark.parametrize(
    "text",
    [
        "2006-01-11 16:42:55 -0800",
        "Sun, 03 Feb 2019 23:20:00 GMT-01:01",
        "Thu, 01 Jan 2004 19:48:21 -00:20",
        "2006-01-17T12:35:9+01:00",
        "Tue, 10 Jun 2003 09:41:01 EDT",
    ],
)
def test_the_failures_seen_in_real_feeds_agree_with_feedparser(text: str) -> None:
    theirs = feedparser_reading(text)
    assert theirs is not None
    assert parse_date(text, BERLIN) == theirs
    assert choose_date(text, theirs, BERLIN) == theirs


def test_feed_dates_the_feed_library_misreads_or_takes_for_utc() -> None:
    # feedparser reads 2020/1/10 as 1 December; numbers follow the source's date order
    misread = feedparser_reading("2020/1/10 14:33:00")
    assert misread is not None
    assert misread.month == 12
    assert choose_date("2020/1/10 14:33:00", misread, BERLIN) == datetime(
        2020, 1, 10, 14, 33, tzinfo=BERLIN
    )
    # a time without an offset is local time in the configured zone, not UTC
    utc = feedparser_reading("2019-02-11T10:00:00")
    assert utc == datetime(2019, 2, 11, 10, 0, tzinfo=UTC)
    assert choose_date("2019-02-11T10:00:00", utc, BERLIN) == datetime(
        2019, 2, 11, 10, 0, tzinfo=BERLIN
    )
    # an ISO 8601 offset without a colon, which feedparser ignores
    ignored = feedparser_reading("2000-01-01T00:00+0010")
    assert ignored == datetime(2000, 1, 1, tzinfo=UTC)
    assert choose_date("2000-01-01T00:00+0010", ignored, BERLIN) == datetime(
        1999, 12, 31, 23, 50, tzinfo=UTC
    )
    # feedparser ignores "PM"
    pm = feedparser_reading("Sat, Dec 16 2023 02:02:33 PM")
    assert pm == datetime(2023, 12, 16, 2, 2, 33, tzinfo=UTC)
    assert choose_date("Sat, Dec 16 2023 02:02:33 PM", pm, UTC) == pm.replace(hour=14)
    # a text the own parser cannot read at all, or only in part: the feed library's reading
    assert choose_date("20190211T100000Z", utc, BERLIN) == utc
    jst = feedparser_reading("Mon, 11 Feb 2019 19:00:00 JST")
    assert jst is not None
    assert choose_date("Mon, 11 Feb 2019 19:00:00 JST", jst, BERLIN) == jst


def test_date_case_figures() -> None:
    cases = _cases()
    record(
        "date cases",
        f"{len(cases)} lines in tests/cases/dates.txt "
        f"({sum(1 for _, want in cases if want == 'none')} of them no date)",
    )
    assert len(cases) >= 60


# pieces of dates (and of what is not one), put together in any order
_PIECES = [
    "Feb", "februar", "März", "Sept.", "Mon,", "Sunday", "11", "3", "2019", "19", "th", "ST",
    ",", ".", "/", "-", ":", " ", "  ", "\xa0", "\t", "14:30", "3:05 PM", "Uhr", "+0100",
    "GMT", "EST", "Meldung vom", "am", "a", "é", "٣", "2019-02-11", "4.11.19", "11/2/2026",
]  # fmt: skip
_DATE_PIECES = st.sampled_from(_PIECES)


def _read_as_with_every_pattern(text: str) -> None:
    from civicfeed.normalise import dates

    everything = dates._PATTERNS
    for order in ("dmy", "mdy"):
        reading = dates._read_date.__wrapped__(text, BERLIN, order)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dates, "_patterns", lambda text: everything)
            assert dates._read_date.__wrapped__(text, BERLIN, order) == reading, text
    normalised = dates.unicodedata.normalize("NFC", text).replace("\xa0", " ")
    assert dates.mentions_date(text) == any(p.search(normalised) for p in everything)


_MONTH_NAMED = [
    "February 11, 2019", "Feb.\t11th,\xa02019 3:00 pm", "Sunday, März 3 2019", "MAI 1ST 2020",
    "xFeb 11 2019", "Jänner 2, 1999, 10:00 EST", "Dec 31 20199", "feb 1 , 2019", "4.Feb 2019",
    "11 Feb2019", "3.mai.,2020", "2 Mär 2021", "1st May 2019", "11. 2019",
]  # fmt: skip


@pytest.mark.parametrize(
    "text", [text.removeprefix("mdy:").strip() for text, _ in _cases()] + _MONTH_NAMED
)
def test_the_patterns_left_out_by_their_hints_could_not_have_matched(text: str) -> None:
    """The reader skips a pattern where a cheap search shows that it cannot match: its
    reading is the one with every pattern tried, and so is mentions_date's."""
    _read_as_with_every_pattern(text)


@given(st.lists(_DATE_PIECES, max_size=12).map("".join) | st.text(max_size=60))
def test_the_patterns_left_out_could_not_have_matched_whatever_the_text(text: str) -> None:
    _read_as_with_every_pattern(text)
