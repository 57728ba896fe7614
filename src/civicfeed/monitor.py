"""What monitoring is told: how fresh the feeds are, and a snapshot for /metrics.

Both are read from the store, so `serve` (beside a cron `refresh`) and `run --serve` report
the same.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import clock
from .config import Config
from .dedup import merge_stories
from .health import health
from .metrics import Snapshot
from .models import OutputFile
from .publish import feed_specs
from .store import Store, open_store

__all__ = ["StateReader", "freshness", "snapshot"]


def freshness(config: Config, store: Store | None, now: datetime | None = None) -> dict[str, Any]:
    """The last completed refresh, its age, and whether that is older than ``stale_after``."""
    now = now or clock.now()
    last = store.last_refresh() if store is not None else None
    limit = config.stale_limit
    if last is None:
        return {
            "last_refresh": None,
            "age_seconds": None,
            "refresh_seconds": None,
            "stale_after_seconds": limit,
            "stale": True,
        }
    finished, seconds = last
    age = max(0.0, (now - finished).total_seconds())
    return {
        "last_refresh": finished.astimezone(config.tz).isoformat(timespec="seconds"),
        "age_seconds": round(age, 1),
        "refresh_seconds": round(seconds, 3),
        "stale_after_seconds": limit,
        "stale": age > limit,
    }


def snapshot(
    config: Config, store: Store | None, feed_entries: Mapping[str, int] | None = None
) -> Snapshot:
    """The store's state for /metrics; ``feed_entries`` when the caller already counted them
    (the service's publisher), else they are counted here."""
    if store is None:
        return Snapshot(sources_by_state=Counter("new" for _ in config.sources))
    states = {source.id: store.source_state(source.id) for source in config.sources}
    entries = dict(feed_entries or {})
    for spec in feed_specs(config):
        if spec.info.id in entries:
            continue
        stories = merge_stories(
            store.entries(spec.members), spec.members, config.tz, config.dedup_window
        )
        entries[spec.info.id] = len(stories)
    last = store.last_refresh()
    return Snapshot(
        sources_by_state=Counter(health(state) for state in states.values()),
        last_success={
            sid: state.last_success.timestamp() if state.last_success else None
            for sid, state in states.items()
        },
        feed_entries=entries,
        last_refresh=last[0].timestamp() if last else None,
        refresh_seconds=last[1] if last else None,
        fetch_errors=store.fetch_error_counts(),
    )


class StateReader:
    """The state as a server reads it: one read-only store for the life of the process,
    opened when first needed (and once the state exists), shared by every request, so a
    PostgreSQL state costs one pool per process and never one per request. Its reads take
    no write lock: a refresh writing at the same time never holds them up."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store | None:
        """The store; None while there is no state yet (before the first refresh)."""
        with self._lock:
            if self._store is None and self.config.state.exists():
                self._store = open_store(self.config.state, read_only=True)
            return self._store

    def read(self, name: str) -> OutputFile | None:
        """A published file kept in the state database (``publish_to: database``)."""
        store = self.get()
        return store.output_file(name) if store is not None else None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
