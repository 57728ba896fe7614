"""Deduplication as data: each tests/cases/dedup/*.json gives the items of each source in one
or more runs, and the stories expected after the last run, with a line saying why.

Items go through the real stages: normalise (title, link, date), then plan_source against the
source's stored entries, run after run; the stories are merge_stories over all sources (in
``order``, default: the order the sources first appear), with the case's ``window``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from civicfeed.config import parse_window
from civicfeed.dedup import Story, merge_stories, plan_source
from civicfeed.models import Entry, Item
from civicfeed.normalise import normalise
from figures import record

CASES = sorted((Path(__file__).parent / "cases" / "dedup").glob("*.json"))


def run_case(case: dict[str, Any]) -> list[Story]:
    zone = ZoneInfo(case.get("timezone", "Europe/Berlin"))
    stored: dict[str, dict[str, Entry]] = {}
    counter = iter(range(1, 10_000))
    for number, run in enumerate(case["runs"], start=1):
        now = datetime.fromisoformat(run["at"])
        for source_id, items in run["sources"].items():
            candidates = []
            for raw in items:
                item = Item(
                    title=raw["title"],
                    link=raw.get("link"),
                    date_text=raw.get("date"),
                    summary_html=raw.get("summary"),
                    guid=raw.get("guid"),
                )
                candidate, _ = normalise(
                    item, source_id=source_id, base_url="https://example.org/", zone=zone
                )
                assert candidate is not None
                candidates.append(candidate)
            entries = stored.setdefault(source_id, {})
            plan = plan_source(
                list(entries.values()),
                candidates,
                now=now,
                zone=zone,
                new_id=lambda prefix=source_id: f"{prefix}-{next(counter)}",
            )
            for entry in plan.new + plan.changed:
                entries[entry.id] = entry
            want = run.get("expect", {}).get(source_id)
            if want is not None:
                got = {"new": len(plan.new), "updated": len(plan.changed)}
                assert got == want, f"run {number}, {source_id}"
    order = case.get("order") or list(dict.fromkeys(s for r in case["runs"] for s in r["sources"]))
    every = [e for entries in stored.values() for e in entries.values()]
    return merge_stories(every, order, zone, parse_window(case.get("window", "1d")))


def described(story: Story) -> tuple[Any, ...]:
    return (
        story.entry.source_id,
        story.entry.title,
        story.entry.link,
        tuple(o.source_id for o in story.origins),
    )


def test_the_corpus_is_large_enough() -> None:
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in CASES]
    assert len(cases) >= 30
    assert all(c["why"].strip() for c in cases)
    across = sum(1 for c in cases if len({s for r in c["runs"] for s in r["sources"]}) > 1)
    stories = sum(len(c["stories"]) for c in cases)
    record(
        "dedup cases",
        f"{len(cases)} cases ({across} across sources, {len(cases) - across} within one "
        f"source), {stories} stories expected",
    )


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_dedup_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    stories = run_case(case)
    expected = [
        (s["source"], s["title"], s.get("link"), tuple(s.get("also", ()))) for s in case["stories"]
    ]
    assert Counter(map(described, stories)) == Counter(expected), case["why"]
    for want in case["stories"]:
        matching = [
            s
            for s in stories
            if described(s)[:3] == (want["source"], want["title"], want.get("link"))
        ]
        if "date" in want:
            wanted = datetime.fromisoformat(want["date"])
            assert any(s.published == wanted for s in matching), (want, case["why"])
        if "id_of" in want:
            assert any(s.id.startswith(want["id_of"] + "-") for s in matching), case["why"]
