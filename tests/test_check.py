"""`civicfeed check` shows its work: selectors, a table of items, warnings; --json for tools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from civicfeed.cli import main
from origin import Origin


def check(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str]:
    code = main(["check", "herne", "--config", str(config), *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out


def test_detected_listing_shows_selectors_and_an_80_column_table(
    origin: Origin, project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
    )

    code, out = check(capsys, config)

    assert code == 0, out
    lines = out.splitlines()
    assert lines[1] == "selectors (detected; to pin them, copy them under html: in sources.yaml):"
    assert "  item:         section.news-list > article.news-teaser" in lines
    assert "  date:         p.news-date" in lines
    assert "  1  2019-02-11        Demokratiekonferenz: Was braucht Wanne?" in lines
    assert any(line.startswith("     Die Veranstalter des Programms") for line in lines)
    # links are shown whole, to be copied; every other line fits 80 columns
    assert all(len(line) <= 80 for line in lines if not line.startswith("     http"))
    assert any(line.startswith("warning: items detected automatically") for line in lines)


def test_check_json(
    origin: Origin, project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
    )

    code, out = check(capsys, config, "--json")

    assert code == 0
    data = json.loads(out)
    assert data["source"] == "herne"
    assert data["kind"] == "html"
    assert data["error"] is None
    assert data["detected"] is True
    assert data["selectors"]["item"] == "section.news-list > article.news-teaser"
    assert len(data["items"]) == 5
    first = data["items"][0]
    assert first["title"] == "Demokratiekonferenz: Was braucht Wanne?"
    assert first["date"] == "2019-02-11T00:00:00+01:00"
    assert first["link"] == origin.url(
        "/Meldungen/News-Detailansicht_27101.html?ref=integration&p=1"
    )
    assert first["summary"].startswith("<p>Die Veranstalter")
    assert any("detected automatically" in w for w in data["warnings"])


def test_a_pinned_item_selector_that_stops_matching_shows_what_detection_picks_now(
    origin: Origin, project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/herne/", "herne-2019.html")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n"
        "    html: {item: div.old-teaser, title: h2}\n"
    )

    code, out = check(capsys, config)
    assert code == 1
    assert "selectors (configured):\n  item:         div.old-teaser\n  title:        h2\n" in out
    assert "the item selector matches nothing; detection would now pick 5 items with:" in out
    assert "  item:         section.news-list > article.news-teaser" in out
    assert "failed: the item selector 'div.old-teaser' matched nothing" in out

    code, out = check(capsys, config, "--json")
    data = json.loads(out)
    assert code == 1
    assert data["selectors"] == {"item": "div.old-teaser", "title": "h2"}
    assert data["suggestion"]["items"] == 5
    assert data["suggestion"]["exact"] is True
    assert data["suggestion"]["selectors"]["title"] == "h3.news-title"
    assert data["items"] == []


def test_a_feed_source_shows_its_items(
    origin: Origin, project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.serve_fixture("/feed.atom", "muelheim.atom", content_type="application/atom+xml")
    config = project(f"  - id: herne\n    title: M\n    url: {origin.url('/feed.atom')}\n")
    code, out = check(capsys, config, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["kind"] == "feed"
    assert data["selectors"] is None
    assert data["items"]


def test_a_page_without_a_listing_says_so(
    origin: Origin, project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/herne/", "<html><body><h1>Impressum</h1><p>Stadt Herne.</p></body></html>")
    config = project(
        f"  - id: herne\n    title: Herne\n    url: {origin.url('/herne/')}\n    html: auto\n"
    )
    code, out = check(capsys, config)
    assert code == 1
    assert "  (none: detection finds no listing on the page)\nfailed: no listing found" in out
