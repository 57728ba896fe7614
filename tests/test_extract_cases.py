"""Extraction as data: each tests/cases/extract/*.json names an input in tests/fixtures, how
it is served, the source's rules, and the entries expected. A new bug becomes a new file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from civicfeed.config import HtmlRules
from civicfeed.errors import ExtractError
from civicfeed.extract.feed import extract_feed
from civicfeed.extract.html import extract_html
from civicfeed.models import Fetched
from civicfeed.normalise import normalise

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases" / "extract").glob("*.json"))


def run_case(case: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    body = (HERE / "fixtures" / case["input"]).read_bytes()
    headers = {k.lower(): v for k, v in case.get("headers", {}).items()}
    fetched = Fetched(case["url"], 200, MappingProxyType(headers), body)
    rules = case.get("html")
    order = case.get("date_order")  # the source's date_order, if it sets one
    extraction = (
        extract_html(fetched, HtmlRules(**rules), order)
        if rules is not None
        else extract_feed(fetched)
    )
    zone = ZoneInfo(case.get("timezone", "Europe/Berlin"))
    entries, warnings = [], list(extraction.warnings)
    for item in extraction.items:
        candidate, notes = normalise(
            item, source_id="case", base_url=fetched.url, zone=zone, date_order=order or "dmy"
        )
        warnings.extend(notes)
        if candidate is None:
            continue
        entries.append(
            {
                "title": candidate.title,
                "link": candidate.link,
                "published": candidate.published.isoformat() if candidate.published else None,
                "summary": candidate.summary,
            }
        )
    return entries, warnings


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_extract_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    if "error" in case:
        with pytest.raises(ExtractError, match=case["error"]):
            run_case(case)
        return
    entries, warnings = run_case(case)
    expected = case["expected"]
    assert [e["title"] for e in entries] == [e["title"] for e in expected]
    for got, want in zip(entries, expected, strict=True):
        assert got["link"] == want["link"]
        if want["published"] is None:
            assert got["published"] is None
        else:
            assert datetime.fromisoformat(got["published"]) == datetime.fromisoformat(
                want["published"]
            )
        if "summary" in want:
            assert got["summary"] == want["summary"]
    for fragment in case.get("warnings", []):
        assert any(fragment in w for w in warnings), (fragment, warnings)
    for entry in entries:  # what every case must satisfy, whatever the input
        for banned in ("<script", "onerror", "onmouseover", "javascript:", "<iframe", "<style"):
            assert banned not in entry["summary"].lower()
