"""Store: entries and per-source state between runs. SQLite by default.

The pipeline talks to the ``Store`` protocol only, so another backend (PostgreSQL) can be
added without touching it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..dedup import SourcePlan, Story
from ..models import DetailPage, Entry, SourceState, Validators

__all__ = ["Store", "open_store"]


class Store(Protocol):
    def source_state(self, source_id: str) -> SourceState: ...

    def entries(self, source_ids: Sequence[str]) -> list[Entry]: ...

    def entry_counts(self) -> dict[str, int]: ...

    def detail_pages(self, source_id: str) -> dict[str, DetailPage]: ...

    def published_digest(self, feed_id: str) -> str | None: ...

    def save_published_digest(self, feed_id: str, digest: str) -> None: ...

    def published_feeds(self) -> list[str]: ...

    def removed_feeds(self) -> set[str]: ...

    def mark_removed(self, feed_id: str, at: datetime) -> None: ...

    def last_refresh(self) -> tuple[datetime, float] | None: ...

    def fetch_error_counts(self) -> dict[str, int]: ...

    def save_refresh(
        self, finished: datetime, seconds: float, errors: Mapping[str, int]
    ) -> None: ...

    def prune(self, keep: Sequence[str]) -> dict[str, int]: ...

    def save_success(
        self,
        source_id: str,
        plan: SourcePlan,
        *,
        validators: Validators,
        item_count: int,
        at: datetime,
        details: Sequence[DetailPage] = (),
        settings: str | None = None,
        title: str | None = None,
        language: str | None = None,
    ) -> None: ...

    def save_not_modified(
        self, source_id: str, at: datetime, settings: str | None = None
    ) -> None: ...

    def archived_pages(self, feed_id: str) -> list[list[Story]]: ...

    def save_archived_page(
        self, feed_id: str, number: int, stories: Sequence[Story], at: datetime
    ) -> None: ...

    def save_failure(self, source_id: str, reason: str, at: datetime) -> None: ...

    def close(self) -> None: ...


def open_store(path: Path, *, read_only: bool = False) -> Store:
    """The store at ``path``; ``read_only`` for readers that must never wait for a lock."""
    from .sqlite import SQLiteStore

    return SQLiteStore(path, read_only=read_only)
