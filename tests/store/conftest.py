"""The store contract suite runs against every backend: SQLite on a real file, PostgreSQL on a
real server (benchmarks/pgserver.py; skipped, saying why, where none can be reached or started)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from civicfeed.store import Store, open_store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The location of a new, empty state on each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/state.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(state: str) -> Iterator[Store]:
    opened = open_store(state)
    try:
        yield opened
    finally:
        opened.close()
