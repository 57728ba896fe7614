"""Write tests/corpus/feeds/<name>.expected.json: each document's entries as feedparser reads it.

Run from the repository root after adding a document to feeds/ and MANIFEST.json:

    .venv/bin/python tests/corpus/make_expected.py [NAME ...]

RSS and Atom are read by feedparser itself, with the headers recorded in MANIFEST.json and the
document's corpus URL as its address (the base of relative links). feedparser does not read
JSON Feed; for JSON documents the fields are taken as the JSON Feed spec defines them (title,
url, id, date_published else date_modified) and the date is read by feedparser's date parser.

Per entry: title (feedparser's value, with its content type), link, guid (feedparser's id),
date (published, else updated, else created; UTC, to the second) with the text it was read
from, and whether the entry has a summary or content. Hand review corrections
live in MANIFEST.json ("review"), not here: this file is feedparser's reading, unedited.
"""

from __future__ import annotations

import calendar
import json
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date

HERE = Path(__file__).parent
FEEDS = HERE / "feeds"
BASE = "https://corpus.example/feeds/"


def document_url(name: str) -> str:
    return BASE + name


def _utc(parsed: time.struct_time | None) -> str | None:
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()


# dict.get on entries: feedparser's own lookup maps a missing key to a related one
_DATE_KEYS = ("published", "updated", "created")


def read_xml(content: bytes, headers: dict[str, str], url: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = feedparser.parse(
            content,
            response_headers={"content-location": url, **headers},  # a served one wins
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    entries = []
    for entry in parsed.get("entries") or []:
        detail = entry.get("title_detail") or {}
        parsed_key = next((k for k in _DATE_KEYS if dict.get(entry, f"{k}_parsed")), None)
        text_key = parsed_key or next((k for k in _DATE_KEYS if dict.get(entry, k)), None)
        entries.append(
            {
                "title": entry.get("title"),
                "title_type": detail.get("type"),
                "link": entry.get("link") or None,
                "guid": entry.get("id") or None,
                "date": _utc(dict.get(entry, f"{parsed_key}_parsed")) if parsed_key else None,
                "date_text": dict.get(entry, text_key) if text_key else None,
                "has_summary": bool(entry.get("summary") or entry.get("content")),
            }
        )
    return {
        "reader": f"feedparser {feedparser.__version__}",
        "version": parsed.get("version") or None,
        "encoding": parsed.get("encoding") or None,
        "bozo": bool(parsed.get("bozo")),
        "bozo_exception": str(parsed.get("bozo_exception") or "") or None,
        "entries": entries,
    }


def read_json(content: bytes) -> dict[str, Any]:
    document = json.loads(content)
    entries = []
    for item in document.get("items", []):
        title, url = item.get("title"), item.get("url")
        date = item.get("date_published") or item.get("date_modified")
        parsed = _parse_date(date) if isinstance(date, str) else None
        entries.append(
            {
                "title": title if isinstance(title, str) else None,
                "title_type": "text/plain",
                "link": url if isinstance(url, str) and url else None,
                "guid": str(item["id"]) if item.get("id") is not None else None,
                "date": _utc(parsed),
                "date_text": date if isinstance(date, str) else None,
                "has_summary": any(
                    isinstance(item.get(k), str) and item[k]
                    for k in ("content_html", "content_text", "summary")
                ),
            }
        )
    return {
        "reader": f"JSON Feed spec, dates by feedparser {feedparser.__version__}",
        "version": document.get("version"),
        "encoding": "utf-8",
        "bozo": False,
        "bozo_exception": None,
        "entries": entries,
    }


def expected(name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    content = (FEEDS / name).read_bytes()
    headers = manifest[name].get("headers", {})
    url = document_url(name)
    is_json = name.endswith(".json")
    try:
        reading = read_json(content) if is_json else read_xml(content, headers, url)
    except ValueError as exc:  # a JSON document that is not JSON
        reading = {"reader": "json", "error": str(exc), "entries": []}
    return {"document": name, "url": url, **reading}


def main(names: list[str]) -> None:
    manifest = json.loads((FEEDS / "MANIFEST.json").read_text(encoding="utf-8"))
    for name in names or sorted(manifest):
        result = expected(name, manifest)
        out = FEEDS / (name + ".expected.json")
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(names or manifest)} expected files written")


if __name__ == "__main__":
    main(sys.argv[1:])
