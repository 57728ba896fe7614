"""How an archive page's stories are written as JSON (store/records.py): the stored text, and
the text of pages stored before in the layout of an object per entry, still read."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from civicfeed.dedup import Story
from civicfeed.store.records import (
    Times,
    _iso_of,
    entry_json,
    page_from,
    page_ids,
    page_json,
    story_from,
)
from store.builders import NOW, make_entry

BERLIN = ZoneInfo("Europe/Berlin")


def _stories() -> list[Story]:
    # the hour repeated when the clocks went back: two instants with the same wall time
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    second = first.replace(fold=1)
    entry = make_entry("urn:1", published=first, seen=second, summary='<p>Grüße & "mehr"</p>')
    copy = make_entry("urn:2", "b", guid="g", link="https://b.example/2", published=second)
    stories = [
        Story("urn:1", entry, (copy,), second),
        Story("urn:3", make_entry("urn:3", minutes=5), (), NOW + timedelta(minutes=5)),
    ]
    return stories


def story_json(story: Story, times: Times | None = None) -> dict[str, Any]:
    """A story as pages were stored before the compact layout: an object per story, each
    entry an ``entry_json`` object."""
    if times is None:
        times = {}
    return {
        "id": story.id,
        "entry": entry_json(story.entry, times),
        "origins": [entry_json(copy, times) for copy in story.origins],
        "updated": _iso_of(story.updated, times),
    }


# a page as it was stored before the compact layout (json.dumps of story_json per story)
def _page_before(stories: list[Story]) -> str:
    return json.dumps(
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


FIELDS = [
    "id",
    "source_id",
    "title",
    "link",
    "published",
    "date_known",
    "summary",
    "first_seen",
    "updated",
    "guid",
    "content",
]


def test_a_page_is_stored_as_its_ids_then_each_entry_as_its_values_with_times_in_utc() -> None:
    stories = _stories()
    second = "2026-10-25T01:30:00.000000+00:00"
    expected = json.dumps(
        {
            "ids": ["urn:1", "urn:3"],
            "fields": FIELDS,
            "stories": [
                [
                    [
                        *("urn:1", "a", "Titel", None),
                        # the first of the two instants with the wall time 02:30 that night
                        "2026-10-25T00:30:00.000000+00:00",
                        *(True, '<p>Grüße & "mehr"</p>', second, second, None, ""),
                    ],
                    [
                        [
                            *("urn:2", "b", "Titel", "https://b.example/2", second, True),
                            *("<p>Zusammenfassung</p>", second, second, "g", ""),
                        ]
                    ],
                    second,
                ],
                [
                    list(entry_json(stories[1].entry).values()),
                    [],
                    stories[1].updated.isoformat(timespec="microseconds"),
                ],
            ],
        }
    )
    assert page_json(stories) == expected
    assert page_json(stories, {}) == expected
    assert page_ids(expected) == ["urn:1", "urn:3"]
    assert _instants(page_from(expected)) == _instants(stories)


def _instants(stories: list[Story]) -> list[tuple[object, ...]]:
    """Each story with its times as instants (a time of the repeated hour in Berlin is never
    equal to one in UTC, whatever instant both are)."""
    return [
        (
            story.id,
            [
                (
                    *(copy.id, copy.source_id, copy.title, copy.link, copy.summary, copy.guid),
                    *(copy.published.timestamp(), copy.first_seen.timestamp()),
                    *(copy.updated.timestamp(), copy.date_known, copy.content),
                )
                for copy in (story.entry, *story.origins)
            ],
            story.updated.timestamp(),
        )
        for story in stories
    ]


def test_a_page_stored_before_in_the_layout_of_an_object_per_entry_reads_as_it_was() -> None:
    stories = _stories()
    before = _page_before(stories)
    assert json.loads(before)[1]["entry"] == entry_json(stories[1].entry)
    assert page_from(before) == [story_from(raw) for raw in json.loads(before)]
    assert page_from(before) == page_from(page_json(stories))
    assert _instants(page_from(before)) == _instants(stories)
    assert page_ids(before) == ["urn:1", "urn:3"]


def test_the_ids_of_a_page_are_read_whatever_characters_they_hold() -> None:
    odd = ['urn:"1"', "urn:[2]", "urn:\\3", 'urn:4", "entry": {', "urn:ü"]
    stories = [Story(ident, make_entry(ident), (), NOW) for ident in odd]
    assert page_ids(page_json(stories)) == odd
    assert page_ids(_page_json_before(stories)) == odd  # decoded whole: escapes in the text
    assert [s.id for s in page_from(page_json(stories))] == odd


def _page_json_before(stories: list[Story]) -> str:
    return json.dumps([story_json(story, {}) for story in stories])


def test_a_page_written_with_other_fields_is_read_by_their_names() -> None:
    # a field Entry no longer has is left out; one it has since takes its default
    entry = make_entry("urn:1", guid="g")
    values = entry_json(entry)
    names = [name for name in FIELDS if name != "content"] + ["gone"]
    row = [values[name] for name in names if name != "gone"] + ["x"]
    text = json.dumps(
        {"ids": ["urn:1"], "fields": names, "stories": [[row, [], values["updated"]]]}
    )
    assert page_from(text) == [Story("urn:1", entry, (), entry.updated)]
