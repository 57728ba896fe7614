"""Source health: backoff decisions (pure) and the status command (end to end)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.health import BACKOFF_CEILING, health, is_due, next_attempt, retry_delay
from civicfeed.models import SourceState
from conftest import write_sources
from origin import Origin

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [
        (0, 0),
        (1, 0),
        (2, 1800),
        (3, 3600),
        (4, 7200),
        (6, 28800),
        (7, BACKOFF_CEILING),
        (50, BACKOFF_CEILING),
    ],
)
def test_retry_delay_doubles_up_to_a_ceiling(failures: int, delay: float) -> None:
    assert retry_delay(failures, every=1800) == delay


def test_a_first_failure_is_retried_at_the_next_run() -> None:
    state = SourceState("a", consecutive_failures=1, last_error="x", last_error_at=NOW)
    assert next_attempt(state, 1800) is None
    assert is_due(state, 1800, NOW)


def test_repeated_failures_hold_a_source_back() -> None:
    state = SourceState("a", consecutive_failures=3, last_error="x", last_error_at=NOW)
    assert next_attempt(state, 1800) == NOW + timedelta(hours=1)
    assert not is_due(state, 1800, NOW + timedelta(minutes=59))
    assert is_due(state, 1800, NOW + timedelta(hours=1))


def test_health_names() -> None:
    assert health(SourceState("a")) == "new"
    assert health(SourceState("a", last_success=NOW)) == "ok"
    assert health(SourceState("a", last_success=NOW, consecutive_failures=1)) == "failing"


def test_status_shows_every_source_and_backoff(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = write_sources(
        tmp_path,
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        "    html: {item: article.news-teaser, title: h3, date: .news-date}\n"
        f"  - id: kaputt\n    title: Kaputt\n    url: {origin.url('/kaputt.rss')}\n"
        "    every: 1h\n",
        defaults="",
    )

    assert main(["status", "--config", str(config)]) == 0  # before any refresh
    assert "herne   new" in capsys.readouterr().out
    assert not (tmp_path / ".civicfeed").exists()

    assert main(["refresh", "--config", str(config)]) == 1
    assert main(["refresh", "--config", str(config)]) == 1
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["herne"]["state"] == "ok"
    assert rows["herne"]["entries"] == 5
    assert rows["herne"]["last_error"] is None
    assert rows["kaputt"]["state"] == "failing"
    assert rows["kaputt"]["consecutive_failures"] == 2
    assert rows["kaputt"]["last_error"] == "HTTP 404 Not Found from 127.0.0.1"
    assert rows["kaputt"]["entries"] == 0
    retry = datetime.fromisoformat(rows["kaputt"]["next_attempt"])
    assert retry - datetime.fromisoformat(rows["kaputt"]["last_error_at"]) == timedelta(hours=1)

    # held back: not fetched, still reported as failing, exit 1
    hits = len(origin.hits("/kaputt.rss"))
    assert main(["refresh", "--config", str(config)]) == 1
    out = capsys.readouterr()
    assert "kaputt                   failing, not tried now: HTTP 404 Not Found" in out.out
    assert "next attempt after" in out.out
    assert "civicfeed: kaputt: HTTP 404 Not Found" in out.err
    assert len(origin.hits("/kaputt.rss")) == hits
    # named explicitly, or with --force, it is fetched anyway
    assert main(["refresh", "--config", str(config), "--force"]) == 1
    assert len(origin.hits("/kaputt.rss")) == hits + 1
    assert main(["refresh", "--config", str(config), "--only", "kaputt"]) == 1
    assert len(origin.hits("/kaputt.rss")) == hits + 2

    # the source recovers
    origin.serve_fixture("/kaputt.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    assert main(["refresh", "--config", str(config), "--force"]) == 0
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "source",
        "state",
        "entries",
        "last",
        "success",
        "next",
        "attempt",
        "last",
        "error",
    ]
    kaputt = next(line for line in table if line.startswith("kaputt"))
    assert kaputt.split()[1:3] == ["ok", "2"]
    assert "HTTP 404 Not Found" in kaputt  # the last error is kept, with its time
