"""The schedule of `civicfeed run`: APScheduler 3 (asyncio), used only here.

One job per source, from its `every` (an interval) or its `cron` (a crontab line in the
configured time zone), with a little jitter so that sources do not all fire at once. A job
never runs twice at the same time, and runs missed during a pause are coalesced into one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["MAX_JITTER", "Scheduler", "check_cron"]

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
