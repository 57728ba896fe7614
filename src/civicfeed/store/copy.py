"""A whole state copied into another backend (``civicfeed migrate-state``)."""

from __future__ import annotations

from typing import Any

from ..errors import StoreError
from . import TABLES, Store

__all__ = ["copy_state"]


def copy_state(source: Store, target: Store, *, target_name: str) -> dict[str, int]:
    """Every row of ``source`` written into the empty ``target`` in one transaction; rows
    copied per table. A target that holds anything is refused: nothing is merged."""
    held = [table for table, _ in TABLES if target.rows(table)]
    if held:
        raise StoreError(
            f"{target_name} is not empty (it holds {', '.join(held)}): "
            "migrate-state copies into an empty state only"
        )
    tables: dict[str, list[tuple[Any, ...]]] = {table: source.rows(table) for table, _ in TABLES}
    target.load(tables)
    return {table: len(rows) for table, rows in tables.items()}
