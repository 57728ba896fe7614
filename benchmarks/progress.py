"""How far a run over a PostgreSQL state has come, read in the database: the sources attempted
at a (frozen) time, and the refresh and publish jobs of the workers' queue still to do. Shared
by the scale-out benchmark and the proof test (tests/test_workers_proof.py)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

# the jobs that are a run's work (the periodic tick and the stalled-job check are not)
WORK_TASKS = ("refresh_source", "publish_feed", "publish_site")


def attempted(db: Any, at: datetime) -> tuple[int, int]:
    """Sources attempted at ``at`` (a success, a 304 or a failure), and of them failed;
    ``db``: a psycopg connection in autocommit mode."""
    from civicfeed.store.records import iso

    stamp = iso(at)
    with contextlib.suppress(Exception):  # before the first refresh there is no table
        row = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE last_error_at = %s"
            " AND (last_success IS NULL OR last_success <> %s))"
            " FROM sources WHERE last_success = %s OR last_error_at = %s",
            (stamp, stamp, stamp, stamp),
        ).fetchone()
        return int(row[0]), int(row[1])
    return 0, 0


def pending(db: Any) -> int:
    """Refresh and publish jobs waiting or under way; -1 while there is no queue yet."""
    like = " OR ".join("task_name = %s" for _ in WORK_TASKS)
    with contextlib.suppress(Exception):  # the queue's schema is not there yet
        row = db.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            f" AND ({like})",
            WORK_TASKS,
        ).fetchone()
        return int(row[0])
    return -1
