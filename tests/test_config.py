"""sources.yaml: valid files load; every kind of mistake exits 2 naming file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from civicfeed.cli import main
from civicfeed.config import load_config, parse_duration, parse_size
from civicfeed.errors import ConfigError
from conftest import civicfeed

VALID = """\
timezone: Europe/Berlin
output: out
base_url: https://feeds.example.org
defaults:
  timeout: 5s
  max_bytes: 2MB
  every: 15m
sources:
  - id: herne-integration
    title: Integrationsportal der Stadt Herne
    url: https://www.herne.de/Stadt-und-Leben/Integration/
    tags: [herne, integration]
    html:
      item: article.news-teaser
      title: h3
      date: .news-date
      link: a.more
      summary: .news-text
  - id: dortmund
    title: Stadt Dortmund
    url: https://www.dortmund.de/rss
    timeout: 30s
    tags: [integration]
feeds:
  - id: herne
    title: Stadt Herne – alle Meldungen
    sources: [herne-integration]
    tags: [integration]
    max_entries: 50
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_valid_config_resolves_defaults_paths_and_members(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    herne, dortmund = config.sources
    assert herne.timeout == 5.0
    assert herne.max_bytes == 2_000_000
    assert herne.every == 900.0
    assert dortmund.timeout == 30.0  # a source's own value beats the default
    assert herne.html is not None
    assert herne.html.item == "article.news-teaser"
    assert dortmund.html is None
    assert config.output == tmp_path / "out"
    assert config.state.path == tmp_path / ".civicfeed" / "state.db"
    assert config.base_url == "https://feeds.example.org/"
    aggregate = config.feeds[0]
    assert [s.id for s in config.members(aggregate)] == ["herne-integration", "dortmund"]
    assert aggregate.max_entries == 50


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
        sources:
          - id: a
            title: A
            url: http://example.org/feed
        """,
        )
    )
    assert config.timezone == "UTC"
    assert config.output == tmp_path / "feeds"
    assert config.sources[0].timeout == 20.0
    assert config.sources[0].max_bytes == 10_000_000
    assert config.per_host == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("20s", 20), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10_000_000), ("512KiB", 524288), ("1GiB", 2**30), (4096, 4096), ("100 kb", 100_000)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


# (name, yaml text, line, key, words in the message)
BAD = [
    ("yaml syntax", "sources:\n  - id: a\n    title: [unclosed\n", 4, None, "YAML syntax"),
    ("unknown top key", "colour: red\nsources: []\n", 1, "colour", "unknown key"),
    (
        "unknown source key",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    colour: red\n",
        5,
        "sources[0].colour",
        "unknown key",
    ),
    (
        "unknown html key",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    html:\n"
        "      item: li\n      heading: h2\n",
        7,
        "sources[0].html.heading",
        "unknown key",
    ),
    (
        "missing url",
        "sources:\n  - id: a\n    title: A\n",
        2,
        "sources[0].url",
        "missing required key",
    ),
    (
        "bad title_remove",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    html:\n"
        "      title_remove: '(('\n",
        6,
        "sources[0].html.title_remove",
        "not a regular expression",
    ),
    (
        "bad duration",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    timeout: 20 seconds\n",
        5,
        "sources[0].timeout",
        "not a duration",
    ),
    (
        "bad duration in defaults",
        "defaults:\n  every: soon\nsources:\n  - id: a\n    title: A\n    url: http://x.org/\n",
        2,
        "defaults.every",
        "not a duration",
    ),
    (
        "bad size",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    max_bytes: lots\n",
        5,
        "sources[0].max_bytes",
        "not a size",
    ),
    (
        "duplicate id",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n"
        "  - id: a\n    title: B\n    url: http://y.org/\n",
        5,
        "sources[1].id",
        "duplicate source id",
    ),
    (
        "aggregate id is a source id",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n"
        "feeds:\n  - id: a\n    title: All\n    sources: [a]\n",
        6,
        "feeds[0].id",
        "already a source id",
    ),
    (
        "aggregate names unknown source",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n"
        "feeds:\n  - id: all\n    title: All\n    sources: [a, b]\n",
        8,
        "feeds[0].sources[1]",
        "unknown source 'b'",
    ),
    (
        "aggregate names unknown tag",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    tags: [x]\n"
        "feeds:\n  - id: all\n    title: All\n    tags: [y]\n",
        9,
        "feeds[0].tags[0]",
        "no source has the tag 'y'",
    ),
    (
        "bad css selector",
        "sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    html:\n"
        "      item: 'li[[['\n",
        6,
        "sources[0].html.item",
        "not a valid CSS selector",
    ),
    (
        "bad id",
        "sources:\n  - id: Herne_1\n    title: A\n    url: http://x.org/\n",
        2,
        "sources[0].id",
        "not a valid id",
    ),
    (
        "bad url",
        "sources:\n  - id: a\n    title: A\n    url: ftp://x.org/\n",
        4,
        "sources[0].url",
        "not an http(s) URL",
    ),
    (
        "bad timezone",
        "timezone: Europe/Herne\nsources:\n  - id: a\n    title: A\n    url: http://x.org/\n",
        1,
        "timezone",
        "not a known time zone",
    ),
    (
        "duplicate key",
        "sources:\n  - id: a\n    title: A\n    title: B\n    url: http://x.org/\n",
        4,
        "title",
        "duplicate key",
    ),
    ("no sources", "timezone: UTC\n", 1, "sources", "missing required key"),
    (
        "websub hub without base_url",
        "websub_hub: https://hub.example.org/\nsources:\n  - id: a\n    title: A\n"
        "    url: http://x.org/\n",
        1,
        "websub_hub",
        "websub_hub needs base_url",
    ),
    (
        "state inside the output folder",
        "output: public\nstate: public/state.db\nsources:\n  - id: a\n    title: A\n"
        "    url: http://x.org/\n",
        2,
        "state",
        "must not be inside the output folder",
    ),
    (
        "id only per source",
        "defaults:\n  url: http://x.org/\nsources:\n  - id: a\n    title: A\n",
        2,
        "defaults.url",
        "per source only",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "key", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_exits_2_with_file_line_and_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    line: int,
    key: str | None,
    words: str,
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == line
    assert caught.value.key == key
    assert words in str(caught.value)
    code = main(["refresh", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    expected = f"{path}:{line}:" + (f" {key}:" if key else "")
    assert expected in err
    assert words in err
    assert "Traceback" not in err
    assert not (tmp_path / "feeds").exists()  # nothing written
    assert not (tmp_path / ".civicfeed").exists()


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refresh", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


def test_unknown_only_id_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, VALID)
    assert main(["refresh", "--config", str(path), "--only", "bochum"]) == 2
    assert "no source with id 'bochum'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_config_as_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - id: a\n    title: A\n    url: http://x.org/\n    every: x\n")
    done = civicfeed("refresh", "--config", str(path))
    assert done.returncode == 2
    assert f"{path}:5: sources[0].every:" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_html_auto_means_detected_items(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
        sources:
          - id: a
            title: A
            url: http://example.org/news/
            html: auto
          - id: b
            title: B
            url: http://example.org/more/
            html:
              detail_date: main
        """,
        )
    )
    first, second = config.sources
    assert first.html is not None
    assert first.html.item is None
    assert second.html is not None
    assert second.html.item is None
    assert second.html.detail_date == "main"


# --- mistakes as data: tests/cases/config/NAME.yaml beside NAME.expected, the exact stderr ---

CASES = Path(__file__).parent / "cases" / "config"
LIBRARY_WORDS = ("Input should", "pydantic", "Field required", "Extra inputs", "found character")


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_config_mistake_gives_its_exact_message(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_bytes((CASES / f"{case}.yaml").read_bytes())
    expected = (CASES / f"{case}.expected").read_text(encoding="utf-8").replace("{file}", str(path))
    assert main(["refresh", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == expected
    assert not any(words in err for words in LIBRARY_WORDS)
    assert not (tmp_path / "feeds").exists()


def test_missing_config_names_the_folder_and_how_to_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CIVICFEED_CONFIG", raising=False)
    assert main(["refresh"]) == 2
    assert capsys.readouterr().err == (
        f"civicfeed: configuration error: sources.yaml: file not found (working directory: "
        f"{tmp_path}); name the configuration file with --config FILE or the environment "
        "variable $CIVICFEED_CONFIG\n"
    )


def test_a_file_that_passed_is_validated_again_from_its_remembered_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicfeed import config as module

    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    first = load_config(path, checked=True)
    memo = tmp_path / ".civicfeed" / "sources.yaml.checked.json"
    assert memo.is_file()
    assert memo.stat().st_mode & 0o077 == 0  # it may hold a database password

    def no_yaml(*args: object) -> None:
        raise AssertionError("the YAML was read again")

    monkeypatch.setattr(module, "_load", no_yaml)
    monkeypatch.setattr(module, "_check_shape", no_yaml)
    again = load_config(path, checked=True)
    assert again == first
    assert again.output == tmp_path / "out"
    assert again.state.path == tmp_path / ".civicfeed" / "state.db"


def test_a_changed_file_is_read_in_full_and_its_errors_name_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    load_config(path, checked=True)
    path.write_text(
        textwrap.dedent(VALID).replace("timeout: 30s", "timeout: soon"), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, checked=True)
    assert caught.value.line == 22
    assert caught.value.key == "sources[1].timeout"
    assert main(["refresh", "--config", str(path)]) == 2
    assert f"{path}:22: sources[1].timeout:" in capsys.readouterr().err


def test_remembered_data_that_does_not_pass_now_is_not_trusted(tmp_path: Path) -> None:
    import json

    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    load_config(path, checked=True)
    memo = tmp_path / ".civicfeed" / "sources.yaml.checked.json"
    kept = tmp_path / ".civicfeed" / "sources.yaml.config.pickle"  # taken before the data
    stored = json.loads(memo.read_text(encoding="utf-8"))
    stored["raw"]["sources"][1]["timeout"] = "soon"  # the same key, data that fails
    memo.write_text(json.dumps(stored), encoding="utf-8")
    kept.unlink()
    config = load_config(path, checked=True)  # the file itself is read: it is valid
    assert config.sources[1].timeout == 30.0
    stored["raw"]["sources"][1]["timeout"] = "1s"  # passes, but the key is not the file's
    stored["key"] = "0" * 64
    memo.write_text(json.dumps(stored), encoding="utf-8")
    kept.unlink()
    assert load_config(path, checked=True).sources[1].timeout == 30.0


def test_a_new_state_in_the_state_folder_is_kept_once_the_command_made_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicfeed import config as module
    from civicfeed.config import keep_checked

    path = write(tmp_path, VALID)  # the default state, .civicfeed/state.db beside the file
    first = load_config(path, checked=True)
    assert not (tmp_path / ".civicfeed").exists()  # a command refused later leaves nothing
    (tmp_path / ".civicfeed").mkdir()  # the refresh made it for its state
    keep_checked()
    assert _kept(tmp_path).is_file()
    assert (tmp_path / ".civicfeed" / "sources.yaml.checked.json").is_file()

    def not_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read or validated again")

    monkeypatch.setattr(module, "_load", not_again)
    monkeypatch.setattr(module, "_validated", not_again)
    assert load_config(path, checked=True) == first


@pytest.mark.parametrize(
    "state",
    [".civicfeed/deeper/state.db", "sqlite:///{tmp}/.civicfeed/other.db"],
)
def test_a_state_named_inside_the_state_folder_is_kept_there(tmp_path: Path, state: str) -> None:
    from civicfeed.config import keep_checked

    path = write(tmp_path, f"state: {state.format(tmp=tmp_path)}\n" + textwrap.dedent(VALID))
    config = load_config(path, checked=True)
    assert config.state.path is not None
    config.state.path.parent.mkdir(parents=True)
    keep_checked()
    assert _kept(tmp_path).is_file()


@pytest.mark.parametrize(
    "state",
    [
        "elsewhere/state.db",
        ".civicfeed-other/state.db",
        ".civicfeed/../state.db",
        "sqlite:///{tmp}/state/state.db",
        "postgresql://civicfeed@localhost/civicfeed",
    ],
)
def test_no_state_folder_is_made_beside_a_file_whose_state_is_elsewhere(
    tmp_path: Path, state: str
) -> None:
    from civicfeed.config import keep_checked

    path = write(tmp_path, f"state: {state.format(tmp=tmp_path)}\n" + textwrap.dedent(VALID))
    load_config(path, checked=True)
    keep_checked()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.yaml"]


def test_a_refresh_of_a_new_state_keeps_the_file_and_a_refused_one_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "sources:\n  - id: gone\n    url: http://127.0.0.1:9/feed.xml\n    timeout: 1s\n",
    )
    assert main(["refresh", "-q", "--only", "nosuch", "--config", str(path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.yaml"]
    assert main(["refresh", "-q", "--config", str(path)]) == 1  # nothing listens there
    capsys.readouterr()
    assert (tmp_path / ".civicfeed" / "state.db").is_file()
    assert _kept(tmp_path).is_file()


def _kept(tmp_path: Path) -> Path:
    return tmp_path / ".civicfeed" / "sources.yaml.config.pickle"


def test_a_file_that_passed_is_taken_from_its_kept_configuration_without_validating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicfeed import config as module

    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    first = load_config(path, checked=True)
    assert _kept(tmp_path).stat().st_mode & 0o077 == 0  # it may hold a database password
    assert [p.name for p in (tmp_path / ".civicfeed").iterdir() if p.suffix == ".tmp"] == []

    def not_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read or validated again")

    monkeypatch.setattr(module, "_load", not_again)
    monkeypatch.setattr(module, "_check_shape", not_again)
    monkeypatch.setattr(module, "_validated", not_again)
    again = load_config(path, checked=True)
    assert again == first
    assert again.sources[1].timeout == 30.0
    assert again.output == tmp_path / "out"
    assert again.state.path == tmp_path / ".civicfeed" / "state.db"
    assert again.members(again.feeds[0]) == first.members(first.feeds[0])


def test_any_change_to_the_file_is_seen_however_small_even_with_its_old_size_and_time(
    tmp_path: Path,
) -> None:
    import os

    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    assert load_config(path, checked=True).sources[1].timeout == 30.0
    before = path.stat()
    path.write_text(
        textwrap.dedent(VALID).replace("timeout: 30s", "timeout: 31s"), encoding="utf-8"
    )
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert load_config(path, checked=True).sources[1].timeout == 31.0
    assert load_config(path, checked=True).sources[1].timeout == 31.0  # kept in its turn


def test_a_kept_configuration_is_the_one_of_its_own_path_only(tmp_path: Path) -> None:
    import shutil

    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        (folder / ".civicfeed").mkdir(parents=True)
        write(folder, VALID)
    load_config(first / "sources.yaml", checked=True)
    # the same bytes elsewhere (a copied folder) are another configuration: paths resolve there
    shutil.copy(_kept(first), _kept(second))
    config = load_config(second / "sources.yaml", checked=True)
    assert config.path == (second / "sources.yaml").resolve()
    assert config.output == second / "out"


def test_a_kept_configuration_that_is_cut_short_or_holds_other_objects_is_not_trusted(
    tmp_path: Path,
) -> None:
    import os
    import pickle

    path = write(tmp_path, VALID)
    (tmp_path / ".civicfeed").mkdir()
    first = load_config(path, checked=True)
    kept = _kept(tmp_path)
    whole = kept.read_bytes()
    key = whole.split(b"\n", 1)[0]
    kept.write_bytes(whole[: len(whole) // 2])  # a run killed while writing it
    assert load_config(path, checked=True) == first
    marker = tmp_path / "made"

    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(marker),))  # what pickle.loads would do

    kept.write_bytes(key + b"\n" + pickle.dumps(Hostile()))  # the right key, other objects
    assert load_config(path, checked=True) == first
    assert not marker.exists()
    kept.write_bytes(key + b"\n" + pickle.dumps({"sources": []}))  # data, but no configuration
    assert load_config(path, checked=True) == first


EVERY_KIND = """\
timezone: Europe/Berlin
date_order: mdy
state: postgresql://civicfeed@localhost/civicfeed
sources:
  - id: herne
    url: https://www.herne.de/Stadt-und-Leben/Integration/
    title: Herne
    description: Integration
    home: https://www.herne.de/
    tags: [herne, integration]
    html:
      item: article.news-teaser
      title: h3
      date: .news-date
      title_remove: "mehr zur Meldung:"
      detail_date: auto
    timeout: 2.5s
    max_bytes: 1MB
    cron: "*/15 * * * *"
    max_entries: 20
    language: en
    follow: true
    content: main article
    follow_hosts: [Presse.Herne.de]
    date_order: dmy
  - id: dortmund
    url: https://www.dortmund.de/rss
  - id: auto
    url: https://www.bochum.de/news
    html: auto
feeds:
  - id: alle
    title: Alle
    sources: [herne, dortmund]
"""


def test_json_fields_are_what_pydantic_dumps(tmp_path: Path) -> None:
    import yaml

    from civicfeed import schema
    from civicfeed.config import json_fields

    path = write(tmp_path, EVERY_KIND)
    config = load_config(path)
    model = schema.Config.model_validate({**yaml.safe_load(path.read_text()), "path": path})
    model = model.model_copy(update={"output": config.output})
    parts: list[tuple[Any, Any]] = [(config, model), (config.worker, model.worker)]
    parts += list(zip(config.sources, model.sources, strict=True))
    parts += list(zip(config.feeds, model.feeds, strict=True))
    parts += [
        (s.html, m.html) for s, m in zip(config.sources, model.sources, strict=True) if s.html
    ]
    assert len(parts) == 2 + 3 + 1 + 2
    for record, part in parts:
        everything = {*type(part).model_fields, "state"}  # state: its own text, redacted
        for exclude in ({"state"}, {"id", "title", "tags", "state"}, everything):
            assert json_fields(record, exclude=exclude) == part.model_dump(
                mode="json", exclude=exclude
            )
    assert json_fields(config, exclude={"state"})["output"] == str(tmp_path / "feeds")


def test_the_schema_has_the_records_fields_and_defaults() -> None:
    import dataclasses

    from pydantic import BaseModel

    from civicfeed import schema

    for record, model in schema.MODELS.items():
        assert [part.name for part in dataclasses.fields(record)] == list(model.model_fields)
        for part in dataclasses.fields(record):
            info = model.model_fields[part.name]
            if part.default is not dataclasses.MISSING:
                assert info.default == part.default, (record.__name__, part.name)
            elif part.default_factory is not dataclasses.MISSING:  # a record: its model's fields
                made = info.default_factory() if info.default_factory is not None else None
                assert isinstance(made, BaseModel)
                assert dataclasses.asdict(part.default_factory()) == made.model_dump()
            else:
                assert info.is_required(), (record.__name__, part.name)


def test_a_source_settings_digest_is_the_one_stored_by_earlier_versions(tmp_path: Path) -> None:
    from civicfeed.refresh import settings_digest

    config = load_config(write(tmp_path, EVERY_KIND))
    # stored in every state as the sources' settings: a change reads every source again
    assert [settings_digest(config, source) for source in config.sources] == [
        "9d931d9bafe6a5fda06c5e618ddcd833",
        "3f07fa017c21abaf40782bd4b47f7b4c",
        "95d288ef2aa90c2f9ab6dc4faf728c00",
    ]


def test_a_kept_configuration_is_read_back_without_yaml_or_pydantic(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    path = write(
        tmp_path, EVERY_KIND.replace("state: postgresql://civicfeed@localhost/civicfeed\n", "")
    )
    (tmp_path / ".civicfeed").mkdir()
    load_config(path, checked=True)  # kept
    probe = (
        "import sys\n"
        "from civicfeed.config import load_config\n"
        "from civicfeed.refresh import settings_digest\n"
        f"config = load_config({str(path)!r}, checked=True)\n"
        "digests = [settings_digest(config, source) for source in config.sources]\n"
        "print('yaml' in sys.modules, 'pydantic' in sys.modules, len(digests))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "False False 3"
