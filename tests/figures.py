"""Figures a test run reports (case counts, corpus sizes): printed once at the end of the run
by the hook in conftest.py, so that they appear in every test run's output."""

from __future__ import annotations

FIGURES: dict[str, str] = {}


def record(name: str, text: str) -> None:
    FIGURES[name] = text
