"""Times for people: in the configured time zone, always with the UTC offset.

Machines get ISO 8601 with the offset (``datetime.isoformat``); people get this.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

__all__ = ["for_people"]


def for_people(moment: datetime, zone: tzinfo | None, *, seconds: bool = False) -> str:
    """'2026-12-01 19:30 +01:00' (with ``seconds``: '2026-12-01 19:30:05 +01:00')."""
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = local.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"
