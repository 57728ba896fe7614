"""History that never changes once complete: an RFC 5005 archive page keeps its stories and
their order as they were when it completed; a later title correction or merge shows in the
current feed only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from civicfeed import publish
from civicfeed.render import Archive, FeedInfo
from feedcheck import ATOM, check_atom
from origin import Origin
from test_bad_items import atom
from test_refresh import refresh

TITLES = ["Meldung eins", "Meldung zwei", "Meldung drei", "Meldung vier", "Meldung fünf"]


def stadt(titles: list[str]) -> str:
    return atom(
        [
            (title, f"https://stadt.example/{n}", f"2026-06-0{n}T10:00:00Z")
            for n, title in enumerate(titles, start=1)
        ]
    )


def titles_in(path: Path) -> list[str]:
    root = check_atom(path)
    return [e.findtext(f"{ATOM}title") or "" for e in root.findall(f"{ATOM}entry")]


def test_complete_archive_pages_never_change_after_a_correction_or_a_merge(
    origin: Origin, project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/stadt.atom", stadt(TITLES), content_type="application/atom+xml")
    partner = [("Älteres vom Partner", "https://partner.example/0", "2026-05-01T10:00:00Z")]
    origin.set("/partner.atom", atom(partner), content_type="application/atom+xml")
    config = project(
        f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/stadt.atom')}\n"
        "    max_entries: 2\n"
        f"  - id: partner\n    title: Partner\n    url: {origin.url('/partner.atom')}\n",
        "feeds:\n  - id: alle\n    title: Alle\n    sources: [stadt, partner]\n"
        "    max_entries: 2\n",
    )
    assert refresh(config, capsys)[0] == 0
    feeds = config.parent / "feeds"
    pages = sorted((feeds / "archive").rglob("*.*"))
    assert [p.relative_to(feeds / "archive").as_posix() for p in pages] == [
        f"{feed}/{n}.{ext}"
        for feed, count in (("alle", 3), ("stadt", 2))
        for n in range(1, count + 1)
        for ext in ("atom", "rss")
    ]
    before = {path: path.read_bytes() for path in pages}
    assert titles_in(feeds / "archive" / "stadt" / "2.atom") == ["Meldung vier", "Meldung drei"]
    assert titles_in(feeds / "archive" / "alle" / "2.atom") == ["Meldung drei", "Meldung zwei"]
    assert titles_in(feeds / "archive" / "alle" / "3.atom") == ["Meldung fünf", "Meldung vier"]

    # the city corrects a title in its page 2; the partner publishes the city's story "drei",
    # which the aggregate merges into a story of its page 2
    corrected = [*TITLES[:3], "Meldung vier (korrigiert)", TITLES[4]]
    origin.set("/stadt.atom", stadt(corrected), content_type="application/atom+xml")
    partner.append(("Meldung drei", "https://partner.example/3", "2026-06-03T12:00:00Z"))
    origin.set("/partner.atom", atom(partner), content_type="application/atom+xml")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert "partner" in output
    assert "0 new, 1 updated" in output

    for path, data in before.items():
        assert path.read_bytes() == data, f"{path.relative_to(feeds)} changed"
    # the current feeds show what is known now
    assert titles_in(feeds / "stadt.atom") == ["Meldung fünf", "Meldung vier (korrigiert)"]
    assert titles_in(feeds / "alle.atom") == ["Meldung fünf", "Meldung vier (korrigiert)"]
    assert "Auch veröffentlicht von" not in (feeds / "archive" / "alle" / "2.atom").read_text()


def test_complete_archive_pages_written_before_are_not_rendered_again(
    origin: Origin,
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[tuple[str, int | None]] = []
    for name in ("render_rss", "render_atom"):
        real = getattr(publish, name)

        def spy(info: FeedInfo, stories: object, zone: object, place: Archive, _r=real) -> bytes:  # type: ignore[no-untyped-def]
            rendered.append((f"{info.id}.{_r.__name__[7:]}", place.number))
            return _r(info, stories, zone, place)  # type: ignore[no-any-return]

        monkeypatch.setattr(publish, name, spy)
    origin.set("/stadt.atom", stadt(TITLES[:4]), content_type="application/atom+xml")
    config = project(
        f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/stadt.atom')}\n"
        "    max_entries: 1\n"
    )
    assert refresh(config, capsys)[0] == 0
    assert sorted((n or 0) for feed, n in rendered if feed == "stadt.atom") == [0, 1, 2, 3, 4]
    feeds = config.parent / "feeds"
    before = {p: p.read_bytes() for p in (feeds / "archive" / "stadt").glob("*")}

    # a fifth story completes page 5: page 4 gains its next-archive link; 1-3 stay as written
    rendered.clear()
    origin.set("/stadt.atom", stadt(TITLES), content_type="application/atom+xml")
    assert refresh(config, capsys)[0] == 0
    assert sorted((n or 0) for _, n in rendered) == [0, 0, 4, 4, 5, 5]
    for path in (feeds / "archive" / "stadt").glob("[123].*"):
        assert path.read_bytes() == before[path]
    page = feeds / "archive" / "stadt" / "4.atom"
    assert page.read_bytes() != before[page]
    assert "stadt/5.atom" in page.read_text()
    check_atom(page)

    # a page removed from the output is rendered again, however old
    (feeds / "archive" / "stadt" / "1.rss").unlink()
    rendered.clear()
    origin.set(
        "/stadt.atom", stadt([*TITLES, "Meldung sechs"]), content_type="application/atom+xml"
    )
    assert refresh(config, capsys)[0] == 0
    assert 1 in {n for _, n in rendered}
    assert (feeds / "archive" / "stadt" / "1.rss").exists()
