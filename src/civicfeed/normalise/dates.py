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
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = ["mentions_date", "parse_date", "plausible"]

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
_TIME = (
    r"(?:,?\s*(?:um|at|ab|-|–)?\s*(?P<hour>\d{1,2})[:.](?P<minute>\d{2})"
    r"(?:[:.](?P<second>\d{2})(?:[.,]\d+)?)?\s*(?:uhr|h\b)?\s*(?P<ampm>[ap]\.?m\.?)?)?"
)
_ZONE = (
    r"(?:\s*(?P<zone>z\b|utc|gmt|ut\b|[+-]\d{2}:?\d{2}|[ecmp][sd]t\b|mesz|mez|cest|cet"
    r"|eest|eet|bst))?"
)
_YEAR = r"(?P<year>\d{4})(?!\d)"
_SHORT_YEAR = r"(?P<year>\d{4}|\d{2})(?!\d)"  # only in numeric dates: "27. Februar, 17 Uhr"

_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # ISO 8601 / RFC 3339
        r"(?<!\d)(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})"
        r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
        r"(?::(?P<second>\d{2})(?:[.,]\d+)?)?(?P<zone>\s?z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)",
        # 11. Februar 2019 / 4. Feb. 2019 / Mon, 11 Feb 2019 10:00:00 +0100
        r"(?<!\d)(?:"
        + _WEEKDAY
        + r")?(?P<day>\d{1,2})\.?\s*"
        + _MONTH
        + r",?\s*"
        + _YEAR
        + _TIME
        + _ZONE,
        # February 11, 2019 / Feb 11th 2019 3:00 PM
        r"(?:"
        + _WEEKDAY
        + r")?"
        + _MONTH
        + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
        + _YEAR
        + _TIME
        + _ZONE,
        # 04.11.2019 / 4.11.19 14:30 Uhr
        r"(?<![\d.])(?P<day>\d{1,2})\.\s?(?P<mon>\d{1,2})\.\s?" + _SHORT_YEAR + _TIME + _ZONE,
    )
]

_NAMED_ZONES = {
    "z": 0,
    "utc": 0,
    "gmt": 0,
    "ut": 0,
    "est": -5,
    "edt": -4,
    "cst": -6,
    "cdt": -5,
    "mst": -7,
    "mdt": -6,
    "pst": -8,
    "pdt": -7,
    "mez": 1,
    "cet": 1,
    "mesz": 2,
    "cest": 2,
    "eet": 2,
    "eest": 3,
    "bst": 1,
}
_MAX_TEXT = 2000  # a date is near the start of whatever text holds it


def parse_date(text: str | None, zone: tzinfo = UTC) -> datetime | None:
    """The first date in ``text`` as an aware datetime, or None if there is none."""
    if not text:
        return None
    text = unicodedata.normalize("NFC", text[:_MAX_TEXT]).replace("\xa0", " ")
    candidates = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            value = _build(match, zone)
            if value is not None:
                candidates.append((match.start(), -len(match.group(0)), value))
                break
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def _build(match: re.Match[str], zone: tzinfo) -> datetime | None:
    parts = match.groupdict()
    year = int(parts["year"])
    if len(parts["year"]) == 2:
        year += 2000 if year < 70 else 1900
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
    offset = _offset(parts.get("zone"))
    if offset is None:
        return naive.replace(tzinfo=zone)
    return naive.replace(tzinfo=offset)


def _offset(zone: str | None) -> tzinfo | None:
    if not zone or not zone.strip():
        return None
    zone = zone.strip().lower()
    if zone in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[zone]))
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        return None
    sign = -1 if zone[0] == "-" else 1
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
    return any(pattern.search(text) for pattern in _PATTERNS)
