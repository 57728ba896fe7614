"""Source health: when a failing source is tried again. Pure functions of stored state.

The first failure is retried at the next run; from the second consecutive failure on, a
source waits ``every`` × 2^(failures − 2) after its last error, at most BACKOFF_CEILING, so a
portal that is down is not hammered by every cron run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from .models import SourceState

__all__ = ["BACKOFF_CEILING", "Health", "health", "is_due", "next_attempt", "retry_delay"]

BACKOFF_CEILING = 12 * 3600.0

Health = Literal["ok", "failing", "new"]


def retry_delay(failures: int, every: float) -> float:
    """Seconds to wait after the last error before the next attempt."""
    if failures < 2:
        return 0.0
    return min(every * 2.0 ** (failures - 2), BACKOFF_CEILING)


def next_attempt(state: SourceState, every: float) -> datetime | None:
    """When a failing source may be tried again; None when it is not held back."""
    if not state.consecutive_failures or state.last_error_at is None:
        return None
    delay = retry_delay(state.consecutive_failures, every)
    return state.last_error_at + timedelta(seconds=delay) if delay else None


def is_due(state: SourceState, every: float, now: datetime) -> bool:
    """May a batch refresh fetch this source now?"""
    when = next_attempt(state, every)
    return when is None or when <= now


def health(state: SourceState) -> Health:
    if state.consecutive_failures:
        return "failing"
    return "ok" if state.last_success else "new"
