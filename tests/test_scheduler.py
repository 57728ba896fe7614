"""The scheduler adapter: intervals, crontab lines, one run of a job at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from civicfeed.config import load_config
from civicfeed.errors import ConfigError
from civicfeed.models import SourceState
from civicfeed.scheduler import Schedule, Scheduler, check_cron, due, next_run

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_slow_job_never_runs_twice_at_once_and_missed_runs_coalesce() -> None:
    """Each run is held until the test lets it end, while the schedule (every 0.1 s) passes
    several of its times: those find the job running and start nothing, neither at once nor
    later, when the run has ended (no backlog of missed runs)."""
    running = 0
    peak = 0
    starts: list[asyncio.Event] = []
    ends: list[asyncio.Event] = []

    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        end = asyncio.Event()
        ends.append(end)
        starts[len(ends) - 1].set()
        try:
            await end.wait()
        finally:  # the last run is cancelled by the shutdown
            running -= 1

    async def until(what: str, condition: Callable[[], bool]) -> None:
        """Wait for a condition; a generous bound against a hang, never a measure."""
        for _ in range(3000):  # 60 s
            if condition():
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"waited 60 s for {what}")

    async def passed_times(scheduler: Scheduler, count: int) -> None:
        """Until the schedule has gone ``count`` of its times past the next one it had."""
        after = datetime.fromisoformat(str(scheduler.next_runs()["slow"]))
        await until(
            f"{count} scheduled times to pass",
            lambda: (
                datetime.fromisoformat(str(scheduler.next_runs()["slow"]))
                >= after + timedelta(seconds=0.1 * count)
            ),
        )

    async def scenario() -> list[int]:
        starts.extend(asyncio.Event() for _ in range(3))
        scheduler = Scheduler(BERLIN)
        scheduler.add("slow", slow, every=0.1, first=datetime.now(BERLIN))
        scheduler.start()
        held = []  # runs started by the end of each held run
        try:
            for run in range(2):
                await until(f"run {run + 1} to start", starts[run].is_set)
                await passed_times(scheduler, 3)  # each found the run still under way
                held.append(len(ends))
                ends[run].set()  # this run ends; the next starts at a later scheduled time
            await until("run 3 to start", starts[2].is_set)
        finally:
            scheduler.shutdown()
            for end in ends:
                end.set()
        await until("the last run to end", lambda: running == 0)
        return held

    held = asyncio.run(scenario())
    assert peak == 1
    # while run 1 was held, and while run 2 was, three scheduled times started no run
    assert held == [1, 2]

    # a job five times overdue at the start (as after a pause) runs once, not five times
    # in a row: the runs are made in one step of the event loop, so they are all counted
    # by the time the first is seen
    runs = 0

    async def quick() -> None:
        nonlocal runs
        runs += 1

    async def paused() -> int:
        scheduler = Scheduler(BERLIN)
        scheduler.add("quick", quick, every=60, first=datetime.now(BERLIN) - timedelta(minutes=5))
        scheduler.start()
        try:
            await until("the overdue run", lambda: runs > 0)
            return runs
        finally:
            scheduler.shutdown()

    assert asyncio.run(paused()) == 1


def test_crontab_lines_run_in_the_configured_zone() -> None:
    async def nothing() -> None:
        pass

    async def scenario() -> dict[str, str | None]:
        scheduler = Scheduler(BERLIN)
        scheduler.add("morning", nothing, every=1800, cron="30 6 * * mon-fri")
        scheduler.start()
        try:
            return scheduler.next_runs()
        finally:
            scheduler.shutdown()

    when = datetime.fromisoformat(str(asyncio.run(scenario())["morning"]))
    local = when.astimezone(BERLIN)
    assert (local.hour, local.minute) == (6, 30)
    assert local.weekday() < 5
    assert when - datetime.now(BERLIN) < timedelta(days=4)
    assert when.utcoffset() == local.utcoffset()


@pytest.mark.parametrize("line", ["61 * * * *", "* * *", "every day"])
def test_bad_crontab_lines_are_refused(line: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a crontab expression"):
        check_cron(line)
    config = tmp_path / "sources.yaml"
    config.write_text(
        f'sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    cron: "{line}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.line == 5
    assert caught.value.key == "sources[0].cron"


# --- what is due, for the workers ------------------------------------------------------------

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=BERLIN)  # a Monday


def _state(
    success: datetime | None = None, error_at: datetime | None = None, failures: int = 0
) -> SourceState:
    return SourceState(
        "a",
        last_success=success,
        last_error="HTTP 503" if error_at else None,
        last_error_at=error_at,
        consecutive_failures=failures,
    )


def test_a_source_never_tried_is_due_at_once() -> None:
    assert due({"a": Schedule(3600)}, {}, T0) == ["a"]
    assert due({"a": Schedule(3600)}, {"a": _state()}, T0) == ["a"]


def test_an_interval_source_is_due_every_seconds_after_its_last_attempt() -> None:
    schedules = {"a": Schedule(900)}
    tried = {"a": _state(success=T0)}
    assert due(schedules, tried, T0 + timedelta(seconds=899)) == []
    assert due(schedules, tried, T0 + timedelta(seconds=900)) == ["a"]
    # the last attempt is the later of the last success and the last error
    failed_later = {"a": _state(success=T0, error_at=T0 + timedelta(minutes=10), failures=1)}
    assert due(schedules, failed_later, T0 + timedelta(minutes=20)) == []
    assert due(schedules, failed_later, T0 + timedelta(minutes=25)) == ["a"]


def test_a_failing_source_waits_for_its_backoff_too() -> None:
    # the 3rd failure in a row: every × 2 after the last error (health.retry_delay)
    failing = {"a": _state(error_at=T0, failures=3)}
    assert due({"a": Schedule(900)}, failing, T0 + timedelta(minutes=15)) == []
    assert due({"a": Schedule(900)}, failing, T0 + timedelta(minutes=30)) == ["a"]


def test_a_cron_source_is_due_at_the_first_time_its_line_names_after_the_last_attempt() -> None:
    weekday_mornings = {"a": Schedule(3600, "30 6 * * mon-fri", BERLIN)}
    friday = datetime(2026, 3, 6, 6, 30, 20, tzinfo=BERLIN)
    tried = {"a": _state(success=friday)}
    assert due(weekday_mornings, tried, friday + timedelta(hours=23)) == []
    monday = datetime(2026, 3, 9, 6, 30, tzinfo=BERLIN)
    assert due(weekday_mornings, tried, monday - timedelta(seconds=1)) == []
    assert due(weekday_mornings, tried, monday) == ["a"]
    assert next_run(weekday_mornings["a"], friday) == monday


def test_due_keeps_the_order_of_the_schedules() -> None:
    schedules = {"c": Schedule(60), "a": Schedule(60), "b": Schedule(60)}
    states = {"a": _state(success=T0)}
    assert due(schedules, states, T0 + timedelta(seconds=30)) == ["c", "b"]
