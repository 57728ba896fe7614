"""civicfeed's reading of real feed documents against feedparser's own reading.

tests/corpus/feeds/ holds feed documents from public repositories' test suites (provenance of
each in MANIFEST.json) and, beside each, <name>.expected.json: its entries as feedparser reads
them (tests/corpus/make_expected.py). Each document goes through civicfeed's feed extraction
and normalisation; per entry, title, link, guid and date (to the second, UTC) are compared.

Every difference is one of:
- DELIBERATE: a documented choice of civicfeed (control characters removed, white space
  collapsed, ...). These are rules, each a function that must explain the difference exactly.
- KNOWN_TO_FIX: today's bugs, listed by document and field with the number of entries that
  differ and the reason. The test fails when such a difference disappears or changes in
  number, so that the list shrinks as fixes land.
Anything else fails the test. The figures are printed on every run.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from dateutil import parser as dateutil_parser

from civicfeed.errors import ExtractError
from civicfeed.extract.feed import extract_feed
from civicfeed.fetch import Fetcher
from civicfeed.models import Fetched
from civicfeed.normalise import normalise
from figures import record
from origin import Origin

CORPUS = Path(__file__).parent / "corpus" / "feeds"
CORPUS_ORIGIN = "https://corpus.example/"  # the documents' address in the expected files
FIELDS = ("title", "link", "guid", "date")
TITLE_LIMIT = 300

# --- what civicfeed does on purpose ----------------------------------------------------------

_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACE = re.compile(r"[\s\u2028\u2029]+")
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")


def _html_to_text(value: str, entry: dict[str, Any]) -> str:
    if "html" in str(entry.get("title_type") or "") and value.strip():
        return str(lxml.html.fragment_fromstring(value, create_parent="div").text_content())
    return value


def _cut(value: str, entry: dict[str, Any]) -> str:
    if len(value) <= TITLE_LIMIT:
        return value
    head = value[: TITLE_LIMIT - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head).rstrip() + "…"


def _absolute(value: str, entry: dict[str, Any]) -> str:
    return urljoin(entry["_url"], value.strip())


def _http_only(value: str, entry: dict[str, Any]) -> str | None:
    return value if urlsplit(value).scheme.lower() in {"http", "https"} else None


# In order: each rule is applied to feedparser's value; a difference that the rules applied
# so far explain is counted as deliberate under every rule that changed the value.
DELIBERATE: dict[str, list[tuple[str, str, Callable[[Any, dict[str, Any]], Any]]]] = {
    "title": [
        (
            "html-title-as-text",
            "a title of type HTML (or XHTML) is shown as its text: markup "
            "removed, character references decoded (once, as HTML)",
            _html_to_text,
        ),
        (
            "controls-removed",
            "control characters cannot be written to XML 1.0 feeds",
            lambda v, e: _CONTROLS.sub("", v),
        ),
        (
            "invisible-removed",
            "soft hyphens, zero-width spaces and word joiners are removed from titles "
            "(they would keep equal headlines apart)",
            lambda v, e: _INVISIBLE.sub("", v),
        ),
        (
            "nfc",
            "text is stored in Unicode NFC, so that equal titles compare equal",
            lambda v, e: unicodedata.normalize("NFC", v),
        ),
        (
            "whitespace-collapsed",
            "runs of white space (line breaks, tabs) become one space, leading and "
            "trailing space is dropped",
            lambda v, e: _SPACE.sub(" ", v).strip(),
        ),
        (
            "title-cut",
            f"titles longer than {TITLE_LIMIT} characters are cut at a word, with "
            "an ellipsis (and a warning)",
            _cut,
        ),
    ],
    "link": [
        (
            "link-absolute",
            "a relative link is made absolute against the document's address",
            _absolute,
        ),
        (
            "link-not-http",
            "only http(s) links are kept (mailto:, javascript:, tag: ... dropped)",
            _http_only,
        ),
    ],
    "guid": [
        (
            "controls-removed",
            "control characters cannot be written to XML 1.0 feeds",
            lambda v, e: _CONTROLS.sub("", v),
        ),
        (
            "invisible-removed",
            "soft hyphens and zero-width characters are removed like in text",
            lambda v, e: _INVISIBLE.sub("", v),
        ),
        (
            "whitespace-collapsed",
            "white space in a guid is collapsed like text",
            lambda v, e: _SPACE.sub(" ", v).strip(),
        ),
    ],
    "date": [],
}

# Documents civicfeed refuses by design although feedparser reads entries from them.
_CUT_OFF = (
    "the document does not end with its root element's end tag: taken for a cut-off "
    "download, refused so that the source keeps its stored entries instead of losing those "
    "past the cut (checked by hand: the fixture is cut off)"
)
_ENTITIES = (
    "the document declares XML entities in its DOCTYPE: refused unread, since entity "
    "expansion and external entities are how feed parsers are attacked; no real feed needs one"
)
DELIBERATE_REFUSALS: dict[str, str] = {
    "feedparser--wellformed-rss-entity_in_doctype.xml": _ENTITIES,
    "feedjira--InvalidDateFormat.xml": _CUT_OFF,
    "feedparser--illformed-rss_incomplete_cdata.xml": _CUT_OFF,
    "feedparser--illformed-rss_item_link_corrupted_ampersands.xml": _CUT_OFF,
}

# --- today's bugs: (document, field) -> (entries that differ, reason) ----------------------
# field "entry": feedparser has the entry, civicfeed has none; "document": refused.
KNOWN_TO_FIX: dict[tuple[str, str], tuple[int, str]] = {}  # none today


# --- reading the corpus ----------------------------------------------------------------------


@cache
def manifest() -> dict[str, Any]:
    return dict(json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8")))


def expected(name: str) -> dict[str, Any]:
    """feedparser's reading, as make_expected.py wrote it."""
    return dict(json.loads((CORPUS / f"{name}.expected.json").read_text(encoding="utf-8")))


def reviewed(name: str) -> dict[str, Any]:
    """feedparser's reading with the corrections of the hand review (MANIFEST.json "review")."""
    reading = expected(name)
    corrections = manifest()[name].get("review", {}).get("corrections", {})
    for index, fields in corrections.items():
        entry = reading["entries"][int(index)]
        for field, value in fields.items():
            assert field in FIELDS, (name, field)
            entry[field] = value
    return reading


def served_headers(name: str) -> dict[str, str]:
    return {k.lower(): v for k, v in manifest()[name].get("headers", {}).items()}


def civicfeed_reading(fetched: Fetched) -> list[dict[str, Any]] | str:
    """The entries civicfeed makes of a response, or the reason it refused the document."""
    try:
        extraction = extract_feed(fetched)
    except ExtractError as exc:
        return f"refused: {exc}"
    entries = []
    for item in extraction.items:
        candidate, _ = normalise(item, source_id="corpus", base_url=fetched.url, zone=UTC)
        if candidate is None:
            continue
        published = candidate.published
        entries.append(
            {
                "title": candidate.title,
                "link": candidate.link,
                "guid": candidate.guid,
                "date": published.astimezone(UTC).replace(microsecond=0).isoformat()
                if published
                else None,
            }
        )
    return entries


def read_direct(name: str) -> list[dict[str, Any]] | str:
    want = expected(name)
    headers = MappingProxyType(served_headers(name))
    return civicfeed_reading(Fetched(want["url"], 200, headers, (CORPUS / name).read_bytes()))


# --- comparing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    document: str
    field: str  # one of FIELDS, "entry" or "document"
    entry: int | None
    feedparser: Any
    civicfeed: Any


def _score(want: dict[str, Any], got: dict[str, Any]) -> int:
    score = 0
    for field, weight in (("guid", 4), ("link", 3), ("title", 2), ("date", 1)):
        if want.get(field) and want.get(field) == got.get(field):
            score += weight
    return score


def align(wanted: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[tuple[int, int | None]]:
    """Pairs (feedparser's entry, civicfeed's entry or None), keeping both orders."""
    if len(wanted) == len(got):
        return [(i, i) for i in range(len(wanted))]
    n, m = len(wanted), len(got)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            score = _score(wanted[i], got[j])
            take = best[i + 1][j + 1] + score if score else -1
            best[i][j] = max(take, best[i + 1][j], best[i][j + 1])
    pairs: list[tuple[int, int | None]] = []
    i = j = 0
    while i < n:
        score = _score(wanted[i], got[j]) if j < m else 0
        if j < m and score and best[i][j] == best[i + 1][j + 1] + score:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif j < m and best[i][j] == best[i][j + 1]:
            j += 1
        else:
            pairs.append((i, None))
            i += 1
    return pairs


TITLE_DERIVED = (
    "title-derived",
    "an item without a title gets one derived from its summary (or link), with a warning",
)
EMPTY_SKIPPED = (
    "empty-item-skipped",
    "an item with neither title, summary nor link carries nothing to show and is skipped; "
    "a 'link' that is only an id (urn:, tag:) is no link (link-not-http)",
)


def explain(field: str, want: Any, got: Any, entry: dict[str, Any]) -> list[str] | None:
    """The deliberate rules that turn feedparser's value into civicfeed's, or None."""
    if want == got:
        return []
    if field == "title" and not (want or "").strip() and got:
        return [TITLE_DERIVED[0]]
    value, used = want, []
    for kind, _reason, rule in DELIBERATE[field]:
        if value is None:
            break
        changed = rule(value, entry)
        if changed != value:
            used.append(kind)
            value = changed
        if value == got:
            return used
    return None


@dataclass
class Report:
    documents: int = 0
    with_entries: int = 0
    refused: int = 0
    compared: int = 0
    equal: Counter[str] = None  # type: ignore[assignment]
    deliberate: Counter[tuple[str, str]] = None  # type: ignore[assignment]
    differences: list[Difference] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.equal, self.deliberate, self.differences = Counter(), Counter(), []


def compare(name: str, reading: list[dict[str, Any]] | str, report: Report) -> None:
    want = reviewed(name)
    wanted = want["entries"]
    report.documents += 1
    report.with_entries += bool(wanted)
    if isinstance(reading, str):
        report.refused += 1
        if wanted:
            report.differences.append(Difference(name, "document", None, len(wanted), reading))
        return
    for index, position in align(wanted, reading):
        entry = {**wanted[index], "_url": want["url"]}
        if position is None:
            link = entry["link"] and _http_only(_absolute(entry["link"], entry), entry)
            if not (entry["title"] or "").strip() and not link and not entry["has_summary"]:
                report.deliberate[("entry", EMPTY_SKIPPED[0])] += 1
            else:
                report.differences.append(Difference(name, "entry", index, wanted[index], None))
            continue
        report.compared += 1
        got = reading[position]
        for field in FIELDS:
            rules = explain(field, entry[field], got[field], entry)
            if rules is None:
                report.differences.append(Difference(name, field, index, entry[field], got[field]))
            elif not rules:
                report.equal[field] += 1
            else:
                report.deliberate[(field, "")] += 1  # entries, whatever the rules
                for kind in rules:
                    report.deliberate[(field, kind)] += 1


def run_corpus(read: Callable[[str], list[dict[str, Any]] | str], names: list[str]) -> Report:
    report = Report()
    for name in names:
        compare(name, read(name), report)
    return report


def documents() -> list[str]:
    return sorted(manifest())


def _figures(report: Report) -> Iterator[str]:
    yield (
        f"feed corpus: {report.documents} documents ({report.with_entries} with entries, "
        f"{report.refused} refused by civicfeed), {report.compared} entries compared"
    )
    for field in FIELDS:
        deliberate = report.deliberate[(field, "")]
        differ = sum(1 for d in report.differences if d.field == field)
        yield (
            f"  {field:<5}: {report.equal[field]} equal, {deliberate} differ deliberately, "
            f"{differ} differ (known to fix)"
        )
    for (field, kind), n in sorted(report.deliberate.items()):
        if kind:
            yield f"  deliberate {field}/{kind}: {n}"
    missing = sum(1 for d in report.differences if d.field == "entry")
    refused = [d.document for d in report.differences if d.field == "document"]
    deliberate_refusals = sum(1 for name in refused if name in DELIBERATE_REFUSALS)
    yield (
        f"  entries feedparser has and civicfeed not: {missing} (known to fix), "
        f"{report.deliberate[('entry', EMPTY_SKIPPED[0])]} (deliberate: {EMPTY_SKIPPED[0]})"
    )
    yield (
        f"  documents refused that feedparser reads: {len(refused)} "
        f"({deliberate_refusals} deliberate, {len(refused) - deliberate_refusals} known to fix)"
    )
    corrected = sum(
        len(fields)
        for entry in manifest().values()
        for fields in entry.get("review", {}).get("corrections", {}).values()
    )
    checked = sum(1 for entry in manifest().values() if entry.get("review", {}).get("by_hand"))
    yield f"  hand review: {checked} documents checked, {corrected} feedparser values corrected"


def test_feed_corpus_against_feedparser() -> None:
    names = documents()
    assert len(names) >= 100
    report = run_corpus(read_direct, names)
    lines = list(_figures(report))
    print("\n".join(lines))  # shown with -s, or on failure: every difference, one per line
    for d in report.differences:
        print(f"  {d.document} {d.field} #{d.entry}: {d.feedparser!r} / {d.civicfeed!r}")
    record("feed corpus", lines[0].removeprefix("feed corpus: ") + "\n" + "\n".join(lines[1:]))
    found = Counter((d.document, d.field) for d in report.differences)
    examples: dict[tuple[str, str], Difference] = {}
    for d in report.differences:
        examples.setdefault((d.document, d.field), d)
    unlisted = [
        examples[key]
        for key in found
        if key not in KNOWN_TO_FIX and not (key[1] == "document" and key[0] in DELIBERATE_REFUSALS)
    ]
    assert not unlisted, "differences not listed as KNOWN_TO_FIX or DELIBERATE:\n" + "\n".join(
        f"  ({d.document!r}, {d.field!r}) x{found[(d.document, d.field)]}: "
        f"feedparser {d.feedparser!r} / civicfeed {d.civicfeed!r}"
        for d in unlisted
    )
    changed = {
        key: (found.get(key, 0), count)
        for key, (count, _) in KNOWN_TO_FIX.items()
        if found.get(key, 0) != count
    }
    assert not changed, (
        "KNOWN_TO_FIX entries that no longer differ as listed (now, listed): update the list: "
        + repr(changed)
    )
    stale_refusals = [n for n in DELIBERATE_REFUSALS if (n, "document") not in found]
    assert not stale_refusals, f"listed as refused, but read: {stale_refusals}"


# --- the expected dates, checked by a second reader ------------------------------------------

_ZONES = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_ZONES |= {"CET": 1, "CEST": 2, "MET": 1, "MEST": 2}


def independent_date(text: str) -> str | None:
    """dateutil's reading of a date text (else the e-mail date parser's), UTC, to the second."""
    for read in (
        lambda s: dateutil_parser.parse(s, tzinfos={k: v * 3600 for k, v in _ZONES.items()}),
        parsedate_to_datetime,
    ):
        try:
            value = read(text.strip())
        except (ValueError, OverflowError, TypeError, IndexError):
            continue
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(microsecond=0).isoformat()
    return None


def test_expected_dates_agree_with_an_independent_reader() -> None:
    """The expected dates (feedparser's, corrected by review) are what a second reader reads
    from the same text: a wrong expected date would make the corpus test prove nothing."""
    checked, disagree = 0, []
    for name in documents():
        for index, entry in enumerate(reviewed(name)["entries"]):
            if not entry.get("date_text"):
                continue
            checked += 1
            other = independent_date(entry["date_text"])
            if other != entry["date"]:
                disagree.append((name, index, entry["date_text"], entry["date"], other))
    record("feed corpus dates", f"{checked} checked against dateutil, {len(disagree)} disagree")
    assert checked > 2000
    assert not disagree


# --- a subset over the loopback origin ------------------------------------------------------

# Encodings, BOMs, HTTP charsets, relative links: where the way a document arrives matters.
LOOPBACK = [
    name
    for name in documents()
    if any(k in name for k in ("encoding", "utf16", "utf-16", "iso-8859", "base", "relative"))
]


def test_feed_corpus_over_loopback_reads_as_directly(origin: Origin) -> None:
    assert len(LOOPBACK) >= 15
    for name in LOOPBACK:
        headers = served_headers(name)
        origin.set(
            f"/feeds/{name}",
            (CORPUS / name).read_bytes(),
            content_type=headers.get("content-type", "application/xml"),
            headers={k: v for k, v in headers.items() if k != "content-type"},
        )

    async def fetch_all() -> dict[str, Fetched]:
        async with Fetcher(retries=0, trusted=["127.0.0.1"]) as client:
            return {n: await client.fetch(origin.url(f"/feeds/{n}")) for n in LOOPBACK}

    fetched = asyncio.run(fetch_all())
    for name in LOOPBACK:
        over_http = civicfeed_reading(fetched[name])
        direct = read_direct(name)
        if isinstance(direct, list):
            direct = json.loads(json.dumps(direct).replace(CORPUS_ORIGIN, origin.url("/")))
        assert over_http == direct, name


def test_make_expected_reproduces_the_stored_readings() -> None:
    """The expected files are feedparser's reading today: regenerating changes nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_expected", CORPUS.parent / "make_expected.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in documents()[::10]:
        assert module.expected(name, manifest()) == expected(name), name
