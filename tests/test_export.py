"""`civicfeed export DIR`: the files published into the database written to a folder for
static hosting, only what changed, with the stored modification times; the files of removed
feeds deleted. On a SQLite state (publish_to: database) and a real PostgreSQL server."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.store import open_store
from origin import FIXTURES, Origin
from test_service import write_config


@pytest.fixture(params=["database", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The top-level lines of a configuration that publishes into its state database."""
    if request.param == "database":
        return "publish_to: database\n"
    return f"state: {request.getfixturevalue('postgres_url')}\n"


@pytest.fixture
def served(origin: Origin) -> Origin:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    return origin


def _stored(config: Path) -> dict[str, tuple[bytes, int]]:
    """Every stored file: its bytes and its modification time (ns)."""
    with closing(open_store(load_config(config).state, read_only=True)) as store:
        found = {}
        for listed in store.output_files():
            file = store.output_file(listed.name)
            assert file is not None
            assert file.data is not None
            found[file.name] = (file.data, int(file.modified.timestamp() * 10**6) * 1000)
        return found


def _folder(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _export(config: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["export", str(folder), "--config", str(config)])
    return code, capsys.readouterr().err


def test_export_writes_what_is_stored_then_only_what_changed(
    served: Origin, tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(served, tmp_path, extra="    max_entries: 2\n", output=database)
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    assert not (tmp_path / "feeds").exists()  # nothing in the output folder
    site = tmp_path / "site"
    code, said = _export(config, site, capsys)
    stored = _stored(config)
    assert code == 0, said
    assert "archive/dortmund/1.atom" in stored  # archive pages too
    assert _folder(site) == stored  # the same bytes, the stored modification times
    assert said.strip().endswith(f"{len(stored)} written, 0 unchanged")

    # nothing new: nothing written, nothing touched
    code, said = _export(config, site, capsys)
    assert (code, said.strip().rsplit(": ", 1)[1]) == (0, f"0 written, {len(stored)} unchanged")
    assert _folder(site) == stored

    # a changed item at the origin: the files it changed, and only those, are written again
    served.set(
        "/herne/",
        (FIXTURES / "herne-2019.html")
        .read_text()
        .replace("Demokratiekonferenz: Was braucht Wanne?", "Demokratiekonferenz in Wanne"),
    )
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    changed = _stored(config)
    different = {name for name in changed if changed[name][0] != stored[name][0]}
    assert {"herne.rss", "alle.rss"} <= different
    assert "dortmund.rss" not in different
    (site / "dortmund.json").write_bytes(b"edited by hand")  # not what is stored: replaced
    leftover = site / ".herne.rss.k1x2y3.tmp"  # what a killed export leaves
    leftover.write_bytes(b"<rss")
    (site / "robots.txt").write_text("User-agent: *\n")  # not civicfeed's: kept
    code, said = _export(config, site, capsys)
    assert code == 0, said
    assert said.strip().endswith(
        f"{len(different) + 1} written, {len(changed) - len(different) - 1} unchanged"
    )
    assert not leftover.exists()
    assert (site / "robots.txt").is_file()
    assert {n: f for n, f in _folder(site).items() if n != "robots.txt"} == changed


def test_export_deletes_the_files_of_removed_feeds(
    served: Origin, tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(served, tmp_path, output=database)
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    site = tmp_path / "site"
    assert _export(config, site, capsys)[0] == 0
    assert (site / "dortmund.rss").is_file()
    config.write_text(config.read_text().split("  - id: dortmund")[0] + "feeds: []\n")
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    code, said = _export(config, site, capsys)
    assert code == 0, said
    assert "the files of 2 removed feed(s) deleted" in said  # dortmund and the aggregate
    assert sorted(_folder(site)) == sorted(_stored(config))
    assert not any(name.startswith(("dortmund.", "alle.")) for name in _folder(site))


def test_a_file_that_cannot_be_written_is_said_and_the_rest_is_exported(
    served: Origin, tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(served, tmp_path, output=database)
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    site = tmp_path / "site"
    (site / "herne.rss").mkdir(parents=True)  # in the way of the file
    code, said = _export(config, site, capsys)
    assert code == 1
    assert "cannot export herne.rss" in said
    assert "1 file(s) could not be written" in said
    assert "Traceback" not in said
    stored = _stored(config)
    assert _folder(site) == {n: f for n, f in stored.items() if n != "herne.rss"}


def test_export_of_a_configuration_that_publishes_to_its_folder_is_refused(
    served: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(served, tmp_path)
    assert main(["refresh", "--config", str(config), "-q"]) == 0
    code, said = _export(config, tmp_path / "site", capsys)
    assert code == 2
    assert "publishes to the folder" in said
    assert "publish_to: folder" in said
    assert not (tmp_path / "site").exists()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    config.write_text(config.read_text() + "publish_to: database\n")
    code, said = _export(config, not_a_folder, capsys)
    assert (code, "is not a folder" in said) == (2, True)
    os.remove(not_a_folder)
