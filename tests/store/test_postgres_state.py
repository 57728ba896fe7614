"""A PostgreSQL state end to end: refresh, status and prune through the CLI, and an existing
SQLite state moved into PostgreSQL with `civicfeed migrate-state`."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from lxml import etree

from civicfeed.cli import main
from civicfeed.store import TABLES, open_store
from origin import Origin

SOURCES = """  - id: herne
    title: Herne
    url: {herne}
    html: auto
  - id: dortmund
    title: Dortmund
    url: {dortmund}
"""
FEEDS = "feeds:\n  - id: ruhr\n    title: Ruhr\n    sources: [herne, dortmund]\n"


def _serve(origin: Origin) -> str:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss")
    return SOURCES.format(herne=origin.url("/herne/"), dortmund=origin.url("/dortmund.rss"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_postgresql_state_refreshes_and_writes_what_sqlite_writes(
    origin: Origin,
    postgres_url: str,
    project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sources = _serve(origin)
    on_sqlite = project(sources, FEEDS, top="output: lite\n")
    assert main(["refresh", "--config", str(on_sqlite)]) == 0
    on_postgres = project(sources, FEEDS, top=f"output: pg\nstate: {postgres_url}\n")
    assert main(["refresh", "--config", str(on_postgres)]) == 0
    assert main(["refresh", "--config", str(on_postgres)]) == 0  # nothing new the second time
    assert "0 feed(s) rewritten" in capsys.readouterr().err
    # a PostgreSQL state publishes into the database; `export` writes the files out
    assert not (tmp_path / "pg").exists()
    assert main(["export", str(tmp_path / "pg"), "--config", str(on_postgres)]) == 0
    capsys.readouterr()
    assert main(["status", "--config", str(on_postgres), "--json"]) == 0
    status = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert status["herne"]["entries"] > 0
    assert status["dortmund"]["entries"] > 0
    with closing(open_store(postgres_url, read_only=True)) as store:
        counts = store.entry_counts()
    assert counts == {sid: status[sid]["entries"] for sid in ("herne", "dortmund")}
    lite, pg = _files(tmp_path / "lite"), _files(tmp_path / "pg")
    assert sorted(lite) == sorted(pg)
    assert {"herne.rss", "dortmund.rss", "ruhr.rss"} <= set(lite)
    for name in ("herne.rss", "dortmund.rss", "ruhr.rss"):  # ids are new per state: not compared
        assert _items(lite[name]) == _items(pg[name])
        assert len(_items(pg[name])) > 0


def test_migrate_state_moves_a_sqlite_state_into_postgresql(
    origin: Origin,
    postgres_url: str,
    project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sources = _serve(origin)
    config = project(sources, FEEDS)
    assert main(["refresh", "--config", str(config)]) == 0
    before = _files(tmp_path / "feeds")
    capsys.readouterr()
    assert main(["migrate-state", "--config", str(config), "--to", postgres_url]) == 0
    said = capsys.readouterr().out
    assert "set `publish_to: folder` too" in said
    lite = tmp_path / ".civicfeed" / "state.db"
    with closing(open_store(lite)) as old, closing(open_store(postgres_url)) as new:
        for table, _ in TABLES:
            assert sorted(map(repr, old.rows(table))) == sorted(map(repr, new.rows(table))), table
        entries = sum(old.entry_counts().values())
    assert f"copied {entries} entries of 2 sources, 3 published feeds" in said
    # a second copy into the same database is refused: nothing is merged
    assert main(["migrate-state", "--config", str(config), "--to", postgres_url]) == 1
    assert "is not empty" in capsys.readouterr().err
    # the configuration switched to the new state: nothing new, no feed rewritten
    config.write_text(config.read_text() + f"state: {postgres_url}\npublish_to: folder\n")
    assert main(["refresh", "--config", str(config)]) == 0
    assert "0 feed(s) rewritten" in capsys.readouterr().err
    assert _files(tmp_path / "feeds") == before


def test_migrate_state_refuses_a_bad_target(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(_serve(origin))
    assert main(["migrate-state", "--config", str(config), "--to", "mysql://x/y"]) == 2
    assert "unknown state scheme 'mysql'" in capsys.readouterr().err
    assert main(["migrate-state", "--config", str(config), "--to", "other.db"]) == 1
    assert "does not exist: nothing to migrate" in capsys.readouterr().err


def _items(rss: bytes) -> list[tuple[str | None, ...]]:
    root = etree.fromstring(rss)
    return [
        (item.findtext("title"), item.findtext("link"), item.findtext("pubDate"))
        for item in root.iter("item")
    ]


def test_run_and_serve_on_a_postgresql_state(
    origin: Origin, postgres_url: str, tmp_path: Path
) -> None:
    """The service on a database state (real processes): it refreshes, serves, reports its
    health and stops cleanly; `serve` alone then reads the database read-only."""
    from test_service import Process, write_config

    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss")
    config = write_config(origin, tmp_path, top=f"state: {postgres_url}\n", base_url=None)
    service = Process("run", "--config", str(config), "--serve", "127.0.0.1:0")
    try:
        port = service.port()
        service.wait_for("feeds rewritten")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
        entries = {row["id"]: row["entries"] for row in health["sources"]}
        assert health["status"] == "ok", health
        assert entries["herne"] > 0
        assert entries["dortmund"] > 0
        assert httpx.get(f"http://127.0.0.1:{port}/alle.rss", timeout=10).status_code == 200
        assert service.stop()[0] == 0
    finally:
        service.kill()
    server = Process("serve", "--config", str(config), "--listen", "127.0.0.1:0")
    try:
        port = server.port()
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
        assert {row["id"]: row["entries"] for row in health["sources"]} == entries
        assert server.stop()[0] == 0
    finally:
        server.kill()
