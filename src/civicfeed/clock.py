"""The one home of "now", and times for people.

``now()`` is the time of everything civicfeed records and publishes: when an entry was first
seen, when a source was attempted, when a feed became empty or an archive page was frozen.
``CIVICFEED_NOW`` (ISO 8601 with a UTC offset, e.g. ``2026-03-01T08:00:00+00:00``) freezes
it, so that two runs over the same sources write the same bytes; a value that is not such a
time is a configuration error. Leases between processes and log lines keep the wall clock:
they are about processes that are alive now, not about the data.

Machines get ISO 8601 with the offset (``datetime.isoformat``); people get ``for_people``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo

from .errors import ConfigError

__all__ = ["ENV", "for_people", "now"]

ENV = "CIVICFEED_NOW"


def now() -> datetime:
    """The current time in UTC to the second, or the one ``CIVICFEED_NOW`` names."""
    frozen = os.environ.get(ENV)
    if frozen is None or not frozen.strip():
        return datetime.now(UTC).replace(microsecond=0)
    return frozen_time(frozen)


def frozen_time(text: str) -> datetime:
    """``text`` as an aware time in UTC; ConfigError naming ``CIVICFEED_NOW`` otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise ConfigError(
            f"{text!r} is not an ISO 8601 time with a UTC offset (e.g. 2026-03-01T08:00:00+00:00)",
            path="environment",
            key=ENV,
        )
    return moment.astimezone(UTC)


def for_people(moment: datetime, zone: tzinfo | None, *, seconds: bool = False) -> str:
    """'2026-12-01 19:30 +01:00' (with ``seconds``: '2026-12-01 19:30:05 +01:00')."""
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = local.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"
