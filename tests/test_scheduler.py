"""The scheduler adapter: intervals, crontab lines, one run of a job at a time."""

from __future__ import annotations

import asyncio
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
    running = 0
    peak = 0
    runs = 0

    async def slow() -> None:
        nonlocal running, peak, runs
        running += 1
        runs += 1
        peak = max(peak, running)
        await asyncio.sleep(0.5)
        running -= 1

    async def scenario() -> None:
        scheduler = Scheduler(BERLIN)
        scheduler.add("slow", slow, every=0.1, first=datetime.now(BERLIN))
        scheduler.start()
        await asyncio.sleep(1.6)
        scheduler.shutdown()
        await asyncio.sleep(0.6)

    asyncio.run(scenario())
    assert peak == 1
    assert 2 <= runs <= 4  # every 0.1 s for 1.6 s, but each run takes 0.5 s


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
