"""How an archive page's stories are written as JSON (store/records.py): the stored text."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from civicfeed.dedup import Story
from civicfeed.store.records import entry_json, page_json, story_from, story_json
from store.builders import NOW, make_entry

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_page_is_stored_as_the_json_of_each_field_with_times_in_utc() -> None:
    # the hour repeated when the clocks went back: two instants with the same wall time
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    second = first.replace(fold=1)
    entry = make_entry("urn:1", published=first, seen=second, summary='<p>Grüße & "mehr"</p>')
    copy = make_entry("urn:2", "b", guid="g", link="https://b.example/2", published=second)
    stories = [
        Story("urn:1", entry, (copy,), second),
        Story("urn:3", make_entry("urn:3", minutes=5), (), NOW + timedelta(minutes=5)),
    ]
    expected = json.dumps(
        [
            {
                "id": "urn:1",
                "entry": {
                    "id": "urn:1",
                    "source_id": "a",
                    "title": "Titel",
                    "link": None,
                    "published": "2026-10-25T00:30:00.000000+00:00",
                    "date_known": True,
                    "summary": '<p>Grüße & "mehr"</p>',
                    "first_seen": "2026-10-25T01:30:00.000000+00:00",
                    "updated": "2026-10-25T01:30:00.000000+00:00",
                    "guid": None,
                    "content": "",
                },
                "origins": [
                    {
                        "id": "urn:2",
                        "source_id": "b",
                        "title": "Titel",
                        "link": "https://b.example/2",
                        "published": "2026-10-25T01:30:00.000000+00:00",
                        "date_known": True,
                        "summary": "<p>Zusammenfassung</p>",
                        "first_seen": "2026-10-25T01:30:00.000000+00:00",
                        "updated": "2026-10-25T01:30:00.000000+00:00",
                        "guid": "g",
                        "content": "",
                    }
                ],
                "updated": "2026-10-25T01:30:00.000000+00:00",
            },
            story_json(stories[1]),
        ]
    )
    assert page_json(stories) == expected
    assert page_json(stories, {}) == json.dumps([story_json(s, {}) for s in stories])
    assert json.loads(expected)[1]["entry"] == entry_json(stories[1].entry)
    back = [story_from(raw) for raw in json.loads(page_json(stories))]
    assert [s.entry.published.timestamp() for s in back] == [
        s.entry.published.timestamp() for s in stories
    ]
