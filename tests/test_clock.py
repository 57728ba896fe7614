"""CIVICFEED_NOW: one frozen "now" for everything recorded and published, so that two runs over
the same sources write the same bytes; a value that is no time stops the command (exit 2)."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.store.sqlite import SQLiteStore
from conftest import write_sources
from origin import Origin
from test_refresh import herne_source, listing, refresh

FROZEN = "2026-03-01T09:30:00+01:00"


def serve_listing(origin: Origin) -> None:
    """A listing with two dated items and one whose date cannot be read (dated "now")."""
    origin.set(
        "/herne/",
        listing(
            [
                ("Meldung vom 12. Februar 2026", "Sprachkurse für Erwachsene", "/m/1.html"),
                ("Meldung vom 10. Februar 2026", "Fachtag Inklusion", "/m/2.html"),
                ("demnächst", "Ferienspiele für Kinder", "/m/3.html"),
            ]
        ),
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_civicfeed_now_is_the_time_entries_are_first_seen_and_undated_ones_are_dated(
    origin: Origin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_listing(origin)
    config = write_sources(tmp_path, herne_source(origin))
    monkeypatch.setenv("CIVICFEED_NOW", FROZEN)
    code, output = refresh(config, capsys)
    assert code == 0, output
    frozen = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with closing(SQLiteStore(tmp_path / ".civicfeed" / "state.db")) as store:
        entries = store.entries(["herne"])
        assert store.source_state("herne").last_success == frozen
    assert len(entries) == 3
    assert {e.first_seen for e in entries} == {frozen}
    undated = next(e for e in entries if e.title == "Ferienspiele für Kinder")
    assert not undated.date_known
    assert undated.published == frozen
    assert "Sun, 01 Mar 2026 09:30:00 +0100" in (tmp_path / "feeds" / "herne.rss").read_text()


def test_two_states_refreshed_from_one_origin_at_one_frozen_time_write_the_same_bytes(
    origin: Origin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_listing(origin)
    monkeypatch.setenv("CIVICFEED_NOW", FROZEN)
    written = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        code, output = refresh(write_sources(folder, herne_source(origin)), capsys)
        assert code == 0, output
        written.append(tree(folder / "feeds"))
    assert "herne.rss" in written[0]
    assert written[0] == written[1]


def test_a_civicfeed_now_that_is_no_time_stops_the_command_with_exit_2(
    origin: Origin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_listing(origin)
    config = write_sources(tmp_path, herne_source(origin))
    for wrong in ("gestern", "2026-03-01T09:30:00"):  # no time; a time without its offset
        monkeypatch.setenv("CIVICFEED_NOW", wrong)
        assert main(["refresh", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert "CIVICFEED_NOW" in err
        assert repr(wrong) in err
        assert "Traceback" not in err
    assert not origin.requests
    assert not (tmp_path / "feeds").exists()
