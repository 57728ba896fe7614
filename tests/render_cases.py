"""Rendering as data: tests/cases/render/<case>/input.json describes a feed (its FeedInfo, its
stories, the zone, its place in the archive) and feed.rss, feed.atom, feed.json and feed.html
beside it are the exact bytes each renderer writes for it (tests/test_render_cases.py).

    .venv/bin/python tests/render_cases.py --inputs     # write the inputs generated below
    .venv/bin/python tests/render_cases.py --expected   # render every input, write its files

Rewriting the expected files is for a deliberate change of the output only; say why in the
commit that does it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from civicfeed.dedup import Story
from civicfeed.models import Entry
from civicfeed.render import (
    Archive,
    FeedInfo,
    SourceRef,
    render_atom,
    render_json,
    render_preview,
    render_rss,
)

CASES = Path(__file__).parent / "cases" / "render"
FILES = ("feed.rss", "feed.atom", "feed.json", "feed.html")

# --- reading a case ------------------------------------------------------------------------


def _entry(raw: dict[str, Any]) -> Entry:
    published = datetime.fromisoformat(raw["published"])
    return Entry(
        id=raw["id"],
        source_id=raw["source_id"],
        title=raw["title"],
        link=raw.get("link"),
        published=published,
        date_known=raw.get("date_known", True),
        summary=raw.get("summary", ""),
        first_seen=datetime.fromisoformat(raw.get("first_seen", raw["published"])),
        updated=datetime.fromisoformat(raw.get("updated", raw["published"])),
        guid=raw.get("guid"),
        content=raw.get("content", ""),
    )


def feed_info(raw: dict[str, Any]) -> FeedInfo:
    sources = {key: SourceRef(id=key, **value) for key, value in raw.get("sources", {}).items()}
    empty_since = raw.get("empty_since")
    return FeedInfo(
        id=raw["id"],
        title=raw["title"],
        description=raw["description"],
        home=raw["home"],
        base_url=raw.get("base_url"),
        language=raw.get("language", "de"),
        sources=MappingProxyType(sources),
        aggregate=raw.get("aggregate", False),
        hub=raw.get("hub"),
        empty_since=datetime.fromisoformat(empty_since) if empty_since else None,
    )


def stories(raw: list[dict[str, Any]]) -> list[Story]:
    result = []
    for story in raw:
        entry = _entry(story["entry"])
        result.append(
            Story(
                id=story.get("id", entry.id),
                entry=entry,
                origins=tuple(_entry(o) for o in story.get("origins", [])),
                updated=datetime.fromisoformat(story.get("updated", story["entry"]["published"])),
            )
        )
    return result


def render_case(case: dict[str, Any]) -> dict[str, bytes]:
    """Every file of a case: the feed (or archive page) in each format."""
    info = feed_info(case["info"])
    items = stories(case["stories"])
    zone: tzinfo = ZoneInfo(case.get("zone", "Europe/Berlin"))
    place = case.get("archive")
    archive = Archive(place["number"], place["newest"]) if place else None
    return {
        "feed.rss": render_rss(info, items, zone, archive),
        "feed.atom": render_atom(info, items, zone, archive),
        "feed.json": render_json(info, items, zone),
        "feed.html": render_preview(info, items, zone),
    }


def case_dirs() -> list[Path]:
    return sorted(path.parent for path in CASES.glob("*/input.json"))


def load(folder: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((folder / "input.json").read_text(encoding="utf-8"))
    return case


# --- the generated inputs ------------------------------------------------------------------

T0 = datetime.fromisoformat("2026-11-20T07:15:00+00:00")
BASE = "https://feeds.example.org/"
WORDS = (
    "Bürgerbüro",
    "Straßensperrung",
    "Öffnungszeiten",
    "Ratssitzung",
    "Müllabfuhr",
    "Ferienprogramm",
    "Baustelle",
    "Wahlhelfer",
)


def _at(moment: datetime) -> str:
    return moment.isoformat()


def raw_entry(number: int, source: str = "stadt", **changes: Any) -> dict[str, Any]:
    published = T0 - timedelta(hours=7 * number, minutes=number)
    word = WORDS[number % len(WORDS)]
    raw: dict[str, Any] = {
        "id": f"urn:civicfeed:{source}:{number}",
        "source_id": source,
        "title": f"{word}: Meldung {number}",
        "link": f"https://www.example.org/{source}/meldung-{number}.html?id={number}&lang=de",
        "published": _at(published),
        "first_seen": _at(published + timedelta(minutes=5)),
        "updated": _at(published + timedelta(minutes=5)),
        "summary": (
            f"<p>Die Stadt informiert über <b>{word}</b> &amp; mehr.</p>"
            f'<p><a href="https://www.example.org/{source}/{number}">Weiterlesen</a></p>'
        ),
    }
    raw.update(changes)
    return raw


def raw_story(entry: dict[str, Any], *origins: dict[str, Any], **changes: Any) -> dict[str, Any]:
    story: dict[str, Any] = {"entry": entry, "updated": entry["updated"]}
    if origins:
        story["origins"] = list(origins)
        story["updated"] = max([entry["updated"], *(o["updated"] for o in origins)])
    story.update(changes)
    return story


def source_info(**changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": "stadt",
        "title": "Stadt Beispielstadt",
        "description": "Meldungen: Stadt Beispielstadt",
        "home": "https://www.example.org/aktuelles/",
        "base_url": BASE,
        "sources": {
            "stadt": {
                "title": "Stadt Beispielstadt",
                "page": "https://www.example.org/aktuelles/",
                "atom_id": f"{BASE}stadt.atom",
                "atom_url": f"{BASE}stadt.atom",
                "rss_url": f"{BASE}stadt.rss",
            }
        },
    }
    info.update(changes)
    return info


def relative(info: dict[str, Any]) -> dict[str, Any]:
    """The same feed written without base_url (as publish.py describes it then)."""
    info = dict(info, base_url=None)
    info["sources"] = {
        key: dict(value, atom_url=None, rss_url=None, atom_id=f"urn:uuid:case-{key}")
        for key, value in info.get("sources", {}).items()
    }
    return info


def thirty(source: str = "stadt") -> list[dict[str, Any]]:
    return [raw_story(raw_entry(n, source)) for n in range(1, 31)]


def aggregate_info(**changes: Any) -> dict[str, Any]:
    sources = {}
    for key, title in (("stadt", "Stadt Beispielstadt"), ("kreis", "Kreis Beispiel")):
        sources[key] = {
            "title": title,
            "page": f"https://www.example.org/{key}/",
            "atom_id": f"{BASE}{key}.atom",
            "atom_url": f"{BASE}{key}.atom",
            "rss_url": f"{BASE}{key}.rss",
        }
    # a listing source without feeds of its own at a public address
    sources["schule"] = {
        "title": "Gesamtschule „Am Park“",
        "page": "https://schule.example.net/termine",
        "atom_id": "urn:uuid:7c1b0a52-0d5e-5f7e-9a43-2b8d3c4f5a61",
    }
    info: dict[str, Any] = {
        "id": "region",
        "title": "Alles aus der Region",
        "description": "Meldungen aus: Stadt Beispielstadt, Kreis Beispiel, Gesamtschule",
        "home": BASE,
        "base_url": BASE,
        "aggregate": True,
        "hub": "https://hub.example.org/",
        "sources": sources,
    }
    info.update(changes)
    return info


def aggregate_stories() -> list[dict[str, Any]]:
    result = []
    for n in range(1, 31):
        source = ("stadt", "kreis", "schule")[n % 3]
        entry = raw_entry(n, source)
        if source == "schule":
            entry["link"] = None  # a listing item without a page of its own
        copies = []
        if n % 4 == 0:  # published by the other two sources as well (one of them twice)
            others = [s for s in ("stadt", "kreis", "schule") if s != source]
            copies = [
                raw_entry(n, others[0], updated=_at(T0 - timedelta(minutes=n))),
                raw_entry(n, others[1], link=None),
                raw_entry(n, others[0], id=f"urn:civicfeed:{others[0]}:{n}b"),
            ]
        if n == 7:  # a source no longer in the feed's sources
            entry["source_id"] = "alt"
        result.append(raw_story(entry, *copies))
    return result


UNSAFE = "\x01\x08\x0b\x0c\x1f\x7f\x85\x9f\ufdd0\ufffe\uffff\ud800\U0001fffe\U0010ffff"


def unsafe_stories() -> list[dict[str, Any]]:
    return [
        raw_story(
            raw_entry(
                1,
                title=f"Steuer{UNSAFE}bescheid & <Frist> „verlängert“",
                summary=f"<p>Text mit Steuer{UNSAFE}zeichen</p>\r\n<p>\tund Tab</p>",
                link=f"https://www.example.org/a?x=1&y=\"2\"&z='3'{UNSAFE}",
                content=f"<div>Artikel{UNSAFE} ]]> <![CDATA[ nicht ]]> &lt;</div>",
            )
        ),
        raw_story(
            raw_entry(2, title="Zeile 1\r\nZeile 2\tmit Tab", summary="nur Text, <kein> HTML &")
        ),
        raw_story(raw_entry(3, id=f"urn:x:{UNSAFE}&<3>", title="Kennung mit Zeichen")),
    ]


def non_ascii_stories() -> list[dict[str, Any]]:
    titles = (
        "Ärger über Straßenbäume in Düsseldorf – „Gutachten“ folgt",
        "Ελληνικά, Русский, 中文, العربية",
        "Emoji 🎉🚧 jenseits der BMP: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "Zero\u200bwidth\u00adsoft\ufeffhyphen und NBSP\u00a0",
    )
    return [
        raw_story(
            raw_entry(
                n,
                title=title,
                summary=f"<p>{title}</p><p>€ £ ¥ § ° ½</p>",
                link=f"https://www.example.org/straße/{n}?q=ä",
            )
        )
        for n, title in enumerate(titles, start=1)
    ]


def date_stories() -> list[dict[str, Any]]:
    def at(text: str) -> dict[str, Any]:
        return {"published": text, "first_seen": text, "updated": text}

    return [
        raw_story(raw_entry(1, **at("2026-03-29T00:59:59.123456+00:00"))),  # before DST
        raw_story(raw_entry(2, **at("2026-03-29T01:00:00+00:00"))),  # after
        raw_story(raw_entry(3, **at("2026-10-25T00:30:00+00:00"))),  # the repeated hour
        raw_story(raw_entry(4, **at("1850-06-01T12:00:00+00:00"))),  # local mean time
        raw_story(raw_entry(5, **at("1900-01-01T00:00:00+00:00"))),
        raw_story(
            raw_entry(
                6,
                published="2026-01-01T00:00:00-05:00",
                first_seen="2026-01-01T06:00:00+01:00",
                updated="2026-06-01T12:00:00+02:00",
            ),
            updated="2026-07-01T12:00:00+00:00",  # a later change in another copy
        ),
        raw_story(raw_entry(7, **at("2199-12-31T23:59:59+00:00"))),
    ]


def content_stories() -> list[dict[str, Any]]:
    article = (
        "<article><h2>Volltext</h2><p>Der ganze Artikel, mit <em>Auszeichnung</em>.</p></article>"
    )
    return [
        raw_story(raw_entry(1, content=article)),  # summary and article
        raw_story(raw_entry(2, content=article, summary="")),  # the article alone
        raw_story(raw_entry(3, summary="")),  # neither
        raw_story(raw_entry(4, summary="Nur Text ohne Auszeichnung")),
        raw_story(raw_entry(5, summary="<p>  viel   Leerraum \n\n und <br>Umbruch </p>  Ende")),
        raw_story(raw_entry(6, summary="<p>kaputt <b>nicht geschlossen<p>&nbsp;&unknown; &#169;")),
        raw_story(raw_entry(7, summary="<!-- Kommentar --><script>x()</script>Text")),
    ]


def content_summaries() -> list[dict[str, Any]]:
    """Articles with summaries of every shape: the summary is then written as plain text."""
    summaries = (
        "Nur Text ohne Auszeichnung",
        "<p>  viel   Leerraum \n\n und <br>Umbruch </p>  Ende",
        "<p>kaputt <b>nicht geschlossen<p>&nbsp;&unknown; &#169; &notit; &amp;amp;",
        "<!-- Kommentar --><script>x()</script><style>p {}</style>Text",
        "a &lt; b &gt; c, 1 < 2 > 0, <a href='x' title=\"a>b\">Ver<i>weis</i></a>",
        "<p>Absatz</p><p>Absatz</p><ul><li>Eins</li><li>Zwei</li></ul>",
        "<![CDATA[ roh ]]> <?php echo 1; ?> Ende",
        "&#x1F389; &#0; &#xD800; &#55296; &#x110000; &euro &auml; &AElig",
        "<P CLASS=x>Groß</P><BR/>geschrieben<img src=x alt='Bild'>",
        "\u00a0\u2003\u3000Leer\u00a0zeichen\u200b",
        "",
    )
    return [
        raw_story(raw_entry(n, summary=summary, content=f"<p>Artikel {n}</p>"))
        for n, summary in enumerate(summaries, start=1)
    ]


def archived(number: int | None, newest: int, *, base: bool) -> dict[str, Any]:
    info = source_info(hub="https://hub.example.org/")
    return {
        "zone": "Europe/Berlin",
        "info": info if base else relative(info),
        "archive": {"number": number, "newest": newest},
        "stories": [raw_story(raw_entry(n)) for n in range(1, 6)],
    }


def generated() -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {
        "source-30": {"info": source_info(), "stories": thirty()},
        "source-relative": {"info": relative(source_info()), "stories": thirty()[:5]},
        "source-hub": {
            "info": source_info(hub="https://hub.example.org/"),
            "stories": thirty()[:3],
        },
        "source-english-utc": {
            "zone": "UTC",
            "info": source_info(language="en", title="City of Example", description="News"),
            "stories": thirty()[:3],
        },
        "source-no-language-new-york": {
            "zone": "America/New_York",
            "info": source_info(language=""),
            "stories": thirty()[:3],
        },
        "aggregate": {"info": aggregate_info(), "stories": aggregate_stories()},
        "aggregate-relative": {
            "info": dict(relative(aggregate_info()), hub=None, home="https://www.example.org/"),
            "stories": aggregate_stories()[:8],
        },
        "aggregate-archive-page": {
            "info": aggregate_info(),
            "archive": {"number": 2, "newest": 4},
            "stories": aggregate_stories()[:6],
        },
        "no-links": {
            "info": source_info(),
            "stories": [raw_story(raw_entry(n, link=None)) for n in range(1, 4)],
        },
        "content": {"info": source_info(), "stories": content_stories()},
        "content-summaries": {"info": source_info(), "stories": content_summaries()},
        "content-summaries-aggregate": {
            "info": aggregate_info(),
            "stories": [
                raw_story(story["entry"], raw_entry(1, "kreis")) for story in content_summaries()
            ],
        },
        "unsafe-characters": {
            "info": source_info(
                title=f"Stadt{UNSAFE} & <Co>",
                description=f"Beschreibung{UNSAFE} mit \"Anführung\" & 'Apostroph'",
            ),
            "stories": unsafe_stories(),
        },
        "non-ascii": {
            "info": source_info(title="Gemeinde Überlingen–Süd", description="Öffentliches"),
            "stories": non_ascii_stories(),
        },
        "dates": {"info": source_info(), "stories": date_stories()},
        "empty": {"info": source_info(), "stories": []},
        "empty-since": {
            "info": source_info(empty_since="2026-11-01T09:00:00+00:00"),
            "stories": [],
        },
        "empty-relative": {
            "info": relative(source_info(hub="https://hub.example.org/")),
            "stories": [],
        },
        "subscription-with-archive": archived(None, 3, base=True),
        "subscription-with-archive-relative": archived(None, 3, base=False),
        "subscription-archive-empty": archived(None, 0, base=True),
        "archive-first": archived(1, 3, base=True),
        "archive-middle": archived(2, 3, base=True),
        "archive-newest": archived(3, 3, base=True),
        "archive-only-page": archived(1, 1, base=True),
        "archive-middle-relative": archived(2, 3, base=False),
    }
    return cases


def write_inputs() -> None:
    for name, case in generated().items():
        folder = CASES / name
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(case, ensure_ascii=True, indent=1) + "\n"
        (folder / "input.json").write_text(text, encoding="utf-8")


def write_expected() -> None:
    for folder in case_dirs():
        for name, data in render_case(load(folder)).items():
            (folder / name).write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", action="store_true", help="write the generated inputs")
    parser.add_argument("--expected", action="store_true", help="write the rendered files")
    args = parser.parse_args()
    steps: list[Callable[[], None]] = []
    if args.inputs:
        steps.append(write_inputs)
    if args.expected:
        steps.append(write_expected)
    if not steps:
        parser.error("--inputs, --expected or both")
    for step in steps:
        step()


if __name__ == "__main__":
    main()
