"""The schedule of `civicfeed run`: APScheduler 3 (asyncio), used only here.

One job per source, from its `every` (an interval) or its `cron` (a crontab line in the
configured time zone), with a little jitter so that sources do not all fire at once. A job
never runs twice at the same time, and runs missed during a pause are coalesced into one.

The workers (workers.py) keep no schedule in memory: what is due is a pure function of the
sources' schedules, what the store says of their last attempts, and the time (``due``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .health import is_due
from .models import SourceState

__all__ = ["MAX_JITTER", "Schedule", "Scheduler", "check_cron", "due", "last_attempt", "next_run"]

# A run that is skipped because the previous one still runs is how the schedule is meant to
# work (one run at a time), not news: APScheduler's warning about it would be a line in its
# own format among the service's log lines (JSON with --log-format json). Its errors remain.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

MAX_JITTER = 60.0  # seconds; at most a tenth of the interval


def check_cron(expression: str) -> str:
    """A crontab line ("*/15 6-22 * * mon-fri"); ValueError with the reason if it is not one."""
    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        reason = str(exc)
        if "Wrong number of fields" in reason:
            reason = "a crontab line has 5 fields: minute hour day-of-month month day-of-week"
        elif reason.startswith("Error validating expression"):
            reason = reason.split(": ", 1)[-1]  # "the last value (61) is higher than ..."
        raise ValueError(f"{expression!r} is not a crontab expression ({reason})") from None
    return expression


class Scheduler:
    def __init__(self, zone: tzinfo) -> None:
        self._zone = zone
        self._scheduler = AsyncIOScheduler(
            timezone=zone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def add(
        self,
        job_id: str,
        job: Callable[[], Awaitable[None]],
        *,
        every: float,
        cron: str | None = None,
        first: datetime | None = None,
    ) -> None:
        """Run ``job`` on its schedule; also at ``first``, if given (the refresh at start)."""
        trigger: BaseTrigger
        if cron:
            trigger = CronTrigger.from_crontab(cron, timezone=self._zone)
            trigger.jitter = int(MAX_JITTER)
        else:
            trigger = IntervalTrigger(
                seconds=every, timezone=self._zone, jitter=int(min(every / 10, MAX_JITTER)) or None
            )
        # APScheduler reads next_run_time=None as "paused": leave it out to follow the trigger
        when = {"next_run_time": first} if first is not None else {}
        self._scheduler.add_job(job, trigger, id=job_id, name=job_id, **when)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop starting jobs; jobs already running are the caller's to finish or cancel."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def next_runs(self) -> dict[str, str | None]:
        return {
            job.id: job.next_run_time.isoformat() if job.next_run_time else None
            for job in self._scheduler.get_jobs()
        }


# --- what is due, for the workers ------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When a source wants refreshing: every ``every`` seconds, or at ``cron`` (a crontab line
    in ``zone``)."""

    every: float
    cron: str | None = None
    zone: tzinfo | None = None


def last_attempt(state: SourceState | None) -> datetime | None:
    """When the source was last tried: its last success (a 304 included) or its last error."""
    if state is None:
        return None
    times = [t for t in (state.last_success, state.last_error_at) if t is not None]
    return max(times, default=None)


def next_run(schedule: Schedule, last: datetime | None) -> datetime | None:
    """When a source last tried at ``last`` is next due by its schedule; None: at once (never
    tried). A cron source is due at the first time its line names after the last attempt."""
    if last is None:
        return None
    if schedule.cron is None:
        return last + timedelta(seconds=schedule.every)
    trigger = CronTrigger.from_crontab(schedule.cron, timezone=schedule.zone)
    after = last.astimezone(schedule.zone) + timedelta(seconds=1)
    when: datetime | None = trigger.get_next_fire_time(None, after)
    return when


def due(
    schedules: Mapping[str, Schedule], states: Mapping[str, SourceState], now: datetime
) -> list[str]:
    """The sources (ids, in the order of ``schedules``) due at ``now``: never tried, or their
    schedule's next run after the last attempt has come, and not held back after repeated
    failures (health.py)."""
    found = []
    for source_id, schedule in schedules.items():
        state = states.get(source_id)
        when = next_run(schedule, last_attempt(state))
        if when is not None and when > now:
            continue
        if state is not None and not is_due(state, schedule.every, now):
            continue
        found.append(source_id)
    return found
