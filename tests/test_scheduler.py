"""The scheduler adapter: intervals, crontab lines, one run of a job at a time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from civicfeed.config import load_config
from civicfeed.errors import ConfigError
from civicfeed.scheduler import Scheduler, check_cron

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
