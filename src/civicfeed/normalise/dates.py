"""Dates as city portals and feeds write them, in German and English.

"Meldung vom 11. Februar 2019", "Nachricht vom 04.11.2019", "4. Feb. 2019, 14:30 Uhr",
ISO 8601, RFC 822 with offsets or zone names, "February 11, 2019", "11 Feb 2019 3:00 PM".
The leftmost date in a text wins. A date without a time is midnight of that calendar day in
the configured zone; a time without an offset is local time in that zone.

Hand-written rather than dateparser: a few anchored patterns are exact, fast (microseconds,
not milliseconds) and never guess a date from a stray number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["DateReading", "mentions_date", "parse_date", "plausible", "read_date"]

_MONTHS = {
    "januar": 1,
    "jänner": 1,
    "january": 1,
    "jan": 1,
    "februar": 2,
    "feber": 2,
    "february": 2,
    "feb": 2,
    "märz": 3,
    "maerz": 3,
    "march": 3,
    "mär": 3,
    "mrz": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "mai": 5,
    "may": 5,
    "juni": 6,
    "june": 6,
    "jun": 6,
    "juli": 7,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "oktober": 10,
    "october": 10,
    "okt": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "dezember": 12,
    "december": 12,
    "dez": 12,
    "dec": 12,
}
_MONTH = "(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_WEEKDAY = (
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*|(?:montag|dienstag|mittwoch|donnerstag"
    r"|freitag|samstag|sonntag)|(?:mo|di|mi|do|fr|sa|so))\.?,?\s*"
)
# zone names with a fixed offset, in hours (North American and European, as in RFC 822 and
# in the wild); the generic US names (ET, CT, MT, PT, AT) mean whichever of standard and
# daylight time was in effect, so they are read in their zone, and only in capitals
_NAMED_ZONES = {
    "z": 0,
    "utc": 0,
    "gmt": 0,
    "ut": 0,
    "wet": 0,
    "west": 1,
    "bst": 1,
    "cet": 1,
    "met": 1,
    "mez": 1,
    "cest": 2,
    "mest": 2,
    "mesz": 2,
    "eet": 2,
    "eest": 3,
    "msk": 3,
    "nst": -3.5,
    "ndt": -2.5,
    "ast": -4,
    "adt": -3,
    "est": -5,
    "edt": -4,
    "cst": -6,
    "cdt": -5,
    "mst": -7,
    "mdt": -6,
    "pst": -8,
    "pdt": -7,
    "akst": -9,
    "akdt": -8,
    "hst": -10,
}
_GENERIC_ZONES = {
    "et": "America/New_York",
    "ct": "America/Chicago",
    "mt": "America/Denver",
    "pt": "America/Los_Angeles",
    "at": "America/Halifax",
}
_NAMES = "|".join(
    sorted((n for n in _NAMED_ZONES if n not in {"utc", "gmt", "ut"}), key=len, reverse=True)
)
_UTC_OFFSET = r"(?:utc|gmt|ut)(?:\s?[+-]\d{1,2}(?::?\d{2})?(?![\d:]))?"
_ZONE_NAME = r"(?:" + _UTC_OFFSET + r"|(?:" + _NAMES + r")\b|(?-i:ET|CT|MT|PT|AT)\b)"
# after a time in running text: a zone name, or a numeric offset after white space
# (never "10:00-12:00 Uhr", a range of times)
_ZONE = (
    r"(?:\s*(?P<zone>" + _ZONE_NAME + r")"
    r"|\s*(?<=\s)(?P<offset>[+-]\d{2}(?::?\d{2})?)(?![\d:]|\s*uhr))?"
)
# in ISO 8601: an offset right after the time, or after one space
_ISO_ZONE = (
    r"(?:\s?(?P<offset>z\b|[+-]\d{2}(?::?\d{2})?(?![\d:]))|\s?(?P<zone>" + _ZONE_NAME + r"))?"
)
_TIME = (
    r"(?:,?\s*(?:um|at|ab|-|–)?\s*(?P<hour>\d{1,2})[:.](?P<minute>\d{2})"
    r"(?:[:.](?P<second>\d{1,2})(?:[.,]\d+)?)?\s*(?:uhr|h\b)?\s*(?P<ampm>[ap]\.?m\.?)?"
    + _ZONE
    + r")?"
)
_YEAR = r"(?P<year>\d{4})(?!\d)"
_SHORT_YEAR = r"(?P<year>\d{4}|\d{2})(?!\d)"  # only in numeric dates: "27. Februar, 17 Uhr"

_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # ISO 8601 / RFC 3339; also 2006-01-11 16:42:55 -0800
        r"(?<!\d)(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})"
        r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
        r"(?::(?P<second>\d{1,2})(?:[.,]\d+)?)?" + _ISO_ZONE + r")?(?![\d:])",
        # 11. Februar 2019 / 4. Feb. 2019 / Mon, 11 Feb 2019 10:00:00 +0100
        r"(?<!\d)(?:" + _WEEKDAY + r")?(?P<day>\d{1,2})\.?\s*" + _MONTH + r",?\s*" + _YEAR + _TIME,
        # February 11, 2019 / Feb 11th 2019 3:00 PM
        r"(?:" + _WEEKDAY + r")?" + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
        r"" + _YEAR + _TIME,
        # 04.11.2019 / 4.11.19 14:30 Uhr: day first, always
        r"(?<![\d.])(?P<day>\d{1,2})\.\s?(?P<mon>\d{1,2})\.\s?" + _SHORT_YEAR + _TIME,
        # 2020/1/10 14:33:00
        r"(?<![\d/])(?P<year>\d{4})/(?P<mon>\d{1,2})/(?P<day>\d{1,2})(?![\d/])" + _TIME,
        # 11/2/2026: day first, or month first with date_order mdy
        r"(?<![\d/])(?P<p1>\d{1,2})/(?P<p2>\d{1,2})/" + _SHORT_YEAR + r"(?!/)" + _TIME,
    )
]
_MAX_TEXT = 2000  # a date is near the start of whatever text holds it
# What a match of the second and third patterns ("11. Februar 2019", "February 11, 2019")
# must contain: the day and a month name (3 letters at least, followed by no letter), and the
# year. These patterns try every weekday and month name at every position of the text (most
# of the reader's time); where their hint finds nothing, they cannot match either.
_HINTS = {
    _PATTERNS[1]: re.compile(r"\d\.?\s*[^\W\d_]{3,}\.?,?\s*\d{4}(?!\d)"),
    _PATTERNS[2]: re.compile(
        r"[^\W\d_]\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}(?!\d)", re.IGNORECASE
    ),
}
_DIGIT = re.compile(r"\d")  # every pattern needs one


@dataclass(frozen=True)
class DateReading:
    value: datetime
    whole: bool  # every part of the text was understood: nothing but the date was written


_FILLER = re.compile(r"[\s,.;:()\[\]–-]*")


def parse_date(text: str | None, zone: tzinfo = UTC, order: str = "dmy") -> datetime | None:
    """The first date in ``text`` as an aware datetime, or None if there is none.

    ``order``: how numeric dates with slashes are read, "dmy" (11/2/2026 is 11 February) or
    "mdy" (2/11/2026 is 11 February); dotted dates are always day first.
    """
    reading = read_date(text, zone, order)
    return reading.value if reading else None


def read_date(text: str | None, zone: tzinfo = UTC, order: str = "dmy") -> DateReading | None:
    """Like parse_date, with what the text said about its zone and its form."""
    if not text:
        return None
    return _read_date(text, zone, order)


@lru_cache(maxsize=8192)
def _read_date(text: str, zone: tzinfo, order: str) -> DateReading | None:
    # cached: a pure function, and dates repeat (a listing's days across the sources of a
    # region, a feed's items when it is read again after a change)
    text = unicodedata.normalize("NFC", text[:_MAX_TEXT]).replace("\xa0", " ")
    candidates = []
    for pattern in _patterns(text):
        for match in pattern.finditer(text):
            value = _build(match, zone, order)
            if value is not None:
                rest = text[: match.start()] + text[match.end() :]
                reading = DateReading(value, bool(_FILLER.fullmatch(rest)))
                candidates.append((match.start(), -len(match.group(0)), reading))
                break
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def _patterns(text: str) -> list[re.Pattern[str]]:
    """The patterns that can match in ``text``."""
    if _DIGIT.search(text) is None:
        return []
    return [p for p in _PATTERNS if p not in _HINTS or _HINTS[p].search(text) is not None]


def _build(match: re.Match[str], zone: tzinfo, order: str = "dmy") -> datetime | None:
    parts = match.groupdict()
    year = int(parts["year"])
    if len(parts["year"]) == 2:
        year += 2000 if year < 70 else 1900
    if parts.get("p1"):
        first, second_part = parts["p1"], parts["p2"]
        day, mon = (second_part, first) if order == "mdy" else (first, second_part)
        parts = {**parts, "day": day, "mon": mon}
    month = _MONTHS[parts["month"].lower()] if parts.get("month") else int(parts["mon"])
    hour = int(parts.get("hour") or 0)
    minute = int(parts.get("minute") or 0)
    second = int(parts.get("second") or 0)
    ampm = (parts.get("ampm") or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if not 1900 <= year <= 2200:
        return None
    try:
        naive = datetime(year, month, int(parts["day"]), hour, minute, min(second, 59))
    except ValueError:
        return None
    written = parts.get("zone") or parts.get("offset")
    if not written:
        return naive.replace(tzinfo=zone)
    offset = _offset(written)
    if offset is None:
        return None  # an offset no place has (+25:00): not a date to trust
    return naive.replace(tzinfo=offset)


_GENERIC_NAMES = _GENERIC_ZONES.keys() | {n.upper() for n in _GENERIC_ZONES}


@lru_cache(maxsize=1024)
def _offset(written: str) -> tzinfo | None:
    """The zone of 'GMT-01:01', '+0100', '-00:20', '+01', 'MESZ', 'EST', 'ET', ..."""
    # cached: a pure function, and a feed writes its dates with one offset or two
    if written.strip() in _GENERIC_NAMES:
        return ZoneInfo(_GENERIC_ZONES[written.strip().lower()])
    text = written.strip().lower().replace(" ", "")
    name = text.rstrip("0123456789:+-")
    if name and not text.startswith(("+", "-")):
        rest = text[len(name) :]
        if name in _NAMED_ZONES and not rest:
            return timezone(timedelta(hours=_NAMED_ZONES[name]))
        if name not in {"utc", "gmt", "ut"}:
            return None
        text = rest or "+00"
    sign = -1 if text[0] == "-" else 1
    digits = text[1:]
    if ":" in digits:
        hour_text, minute_text = digits.split(":", 1)
    elif len(digits) > 2:
        hour_text, minute_text = digits[:-2], digits[-2:]
    else:
        hour_text, minute_text = digits, "0"
    hours, minutes = int(hour_text), int(minute_text)
    if hours > 14 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# --- range and validity, for dates read by other parsers (feedparser) -----------------------

EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def plausible(moment: datetime) -> bool:
    """A date an announcement can carry: years outside 1900–2200 are read as unknown (before
    1893 zones had local mean time offsets, which RFC 822 cannot write)."""
    return EARLIEST_YEAR <= moment.year <= LATEST_YEAR


def mentions_date(text: str | None) -> bool:
    """Whether ``text`` is written like a date, possible or not ("2024-02-31"): where
    parse_date finds none in such a text, another parser's reading of it (feedparser rolls
    31 February over to 2 March) is not to be trusted either."""
    if not text:
        return False
    text = unicodedata.normalize("NFC", text[:_MAX_TEXT]).replace("\xa0", " ")
    return any(pattern.search(text) for pattern in _patterns(text))
