"""The date parser, driven by tests/cases/dates.txt, and its properties."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicfeed.normalise import parse_date

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
    parsed = parse_date(text, BERLIN)
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
