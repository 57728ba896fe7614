"""Deduplication decisions: pure functions, tested without sockets or files."""

from __future__ import annotations

import itertools
import re
import unicodedata
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicfeed import dedup
from civicfeed.dedup import merge_stories, plan_source, title_key
from civicfeed.models import Candidate, Entry
from store.builders import make_entry

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2019, 2, 12, 8, 0, tzinfo=UTC)

STORY = "Städtekooperation feiert „10 Jahre Integration.Interkommunal“ – Gemeinsam stark"


@pytest.mark.parametrize(
    "variant",
    [
        'Städtekooperation feiert "10 Jahre Integration.Interkommunal" - Gemeinsam stark.',
        "STÄDTEKOOPERATION FEIERT »10 JAHRE INTEGRATION.INTERKOMMUNAL« — GEMEINSAM STARK",
        "Städtekooperation  feiert “10 Jahre Integration.Interkommunal”  –  Gemeinsam stark!",
        "Städtekooperation feiert ‚10 Jahre Integration.Interkommunal‘—Gemeinsam stark …",
        "Städtekooperation feiert «10 Jahre Integration.Interkommunal» ‒ Gemeinsam stark?:",
        "Ｓtädtekooperation feiert „10 Jahre Integration.Interkommunal“ – Gemeinsam stark",  # NFKC
    ],
)
def test_title_variants_share_a_key(variant: str) -> None:
    assert title_key(variant) == title_key(STORY)


@pytest.mark.parametrize(
    "other",
    [
        # without quotes
        "Städtekooperation feiert 10 Jahre Integration.Interkommunal – Gemeinsam stark",
        "Städtekooperation feiert „11 Jahre Integration.Interkommunal“ – Gemeinsam stark",
        "Städtekooperation feiert „10 Jahre Integration.Interkommunal“ – Gemeinsam stärker",
    ],
)
def test_different_titles_keep_different_keys(other: str) -> None:
    assert title_key(other) != title_key(STORY)


@given(st.text(max_size=200))
def test_title_key_is_idempotent(text: str) -> None:
    once = title_key(text)
    assert title_key(once) == once


def _title_key_as_defined(title: str) -> str:
    """title_key's rule written out step by step (the reference for its faster form)."""
    text = unicodedata.normalize("NFKC", dedup._IGNORABLE.sub("", title))
    text = unicodedata.normalize("NFKC", text.casefold())
    text = dedup._IGNORABLE.sub("", text).translate(dedup._DASHES).translate(dedup._QUOTES)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*-\s*", " - ", text).strip()
    while text and text[-1] in ".!?:;… ":
        text = text[:-1]
    return text


_TITLE_CHARACTERS = st.text(
    st.sampled_from(
        [chr(c) for c in (*dedup._DASHES, *dedup._QUOTES)]
        + list(" \t\n.!?:;…-\u00ad\u200bÄäßẞﬁＳ\u0301aZ0")
    )
    | st.characters(),
    max_size=60,
)


@given(_TITLE_CHARACTERS)
def test_title_key_follows_its_rule_step_by_step(text: str) -> None:
    assert title_key(text) == _title_key_as_defined(text)


@given(
    st.text(st.characters(max_codepoint=127) | st.sampled_from(list("'`\t\x1c -.!?")), max_size=60)
)
def test_title_key_of_ascii_text_follows_its_rule(text: str) -> None:
    assert title_key(text) == _title_key_as_defined(text)


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("Markt  am \t Rathaus", "markt am rathaus"),
        ("Markt\u00a0am\nRathaus", "markt am rathaus"),
        ("Markt \u2003 am Rathaus", "markt am rathaus"),
        ("Markt-am -  Rathaus", "markt - am - rathaus"),
        ("  Markt am Rathaus . ", "markt am rathaus"),
    ],
)
def test_white_space_runs_collapse_to_one_space(title: str, key: str) -> None:
    assert title_key(title) == key == _title_key_as_defined(title)


def candidate(
    title: str,
    *,
    day: int | None = 4,
    link: str | None = None,
    source: str = "herne",
    guid: str | None = None,
    hour: int = 0,
    summary: str = "",
) -> Candidate:
    published = datetime(2019, 2, day, hour, 0, tzinfo=BERLIN) if day else None
    return Candidate(
        source_id=source, title=title, link=link, published=published, summary=summary, guid=guid
    )


def ids() -> itertools.count[int]:
    return itertools.count(1)


def plan(
    existing: list[Entry],
    candidates: list[Candidate],
    now: datetime = T0,
    counter: itertools.count[int] | None = None,
):  # type: ignore[no-untyped-def]
    counter = counter or itertools.count(len(existing) + 1)
    return plan_source(
        existing, candidates, now=now, zone=BERLIN, new_id=lambda: f"id-{next(counter)}"
    )


def test_entry_ids_stay_what_they_were() -> None:
    # ids are stored and published: the same item must keep its id from release to release
    item = Candidate("herne", "Rathaus geschlossen", "https://www.herne.de/a", T0, "", guid="g-1")
    undated = Candidate("herne", "Städtekooperation „10 Jahre“ – \U0001f600", None, None, "")
    assert dedup.entry_id(item) == "urn:uuid:ab9e24e9-ad67-5fe3-a7aa-9883e4a3fcca"
    taken = {dedup.entry_id(item)}
    assert dedup.entry_id(item, taken) == "urn:uuid:284228c2-6163-5179-a3ff-a2b15f2b27d7"
    assert dedup.entry_id(undated) == "urn:uuid:9cdb8ae6-12a6-5cf1-8f18-07333f65f859"


@given(
    st.text(),
    st.text(),
    st.one_of(st.none(), st.text(min_size=1)),
    st.one_of(st.none(), st.text(min_size=1)),
    st.integers(min_value=0, max_value=3),
)
def test_entry_ids_are_the_name_based_uuids_of_the_item(
    source: str, title: str, link: str | None, guid: str | None, taken_before: int
) -> None:
    item = Candidate(source, title, link, T0, "", guid=guid)
    name = "\n".join([source, guid or "", link or "", title, T0.isoformat()])
    namespace = uuid.UUID("5c1e4b53-8f0e-4d1c-9a57-0c1f3e2d6b8a")
    names = [name] + [f"{name}\n{number}" for number in range(1, taken_before + 1)]
    ids = [f"urn:uuid:{uuid.uuid5(namespace, n)}" for n in names]
    assert dedup.entry_id(item, set(ids[:-1])) == ids[-1]


def test_a_plan_carries_the_title_key_of_each_entry_it_saves() -> None:
    stored = make_entry("urn:1", title="Alt", link="http://x/a")
    fetched = [
        candidate("Neu – „Titel“", link="http://x/a"),  # an update of the stored entry
        candidate("Zweite Meldung!", link="http://x/b"),
    ]
    result = plan_source([stored], fetched, now=T0, zone=BERLIN)
    (changed,) = result.changed
    (new,) = result.new
    assert result.keys == {changed.id: title_key(changed.title), new.id: title_key(new.title)}


def test_a_new_entry_is_named_by_what_the_item_says_so_two_processes_name_it_alike() -> None:
    fetched = [
        candidate("A", link="http://x/a"),
        candidate("B", guid="b-1"),
        candidate("Undated", day=None),
    ]
    first = plan_source([], fetched, now=T0, zone=BERLIN)
    later = plan_source([], fetched, now=T0 + timedelta(hours=5), zone=BERLIN)
    assert [e.id for e in first.new] == [e.id for e in later.new]
    assert len({e.id for e in first.new}) == 3
    elsewhere = plan_source([], [replace(fetched[0], source_id="bochum")], now=T0, zone=BERLIN)
    assert elsewhere.new[0].id != first.new[0].id  # the same item in another source
    assert all(e.id.startswith("urn:uuid:") for e in first.new)
    # an id already taken (an entry that looks alike, with another identity) is not reused
    taken = replace(first.new[0], link="http://x/other")
    again = plan_source([taken], [fetched[0]], now=T0, zone=BERLIN)
    assert len(again.new) == 1
    assert again.new[0].id != taken.id


def test_new_items_get_ids_and_first_seen() -> None:
    result = plan([], [candidate("A", link="http://x/a"), candidate("B", link="http://x/b")])
    assert [e.id for e in result.new] == ["id-1", "id-2"]
    assert all(e.first_seen == T0 and e.updated == T0 for e in result.new)
    assert result.changed == ()


def test_same_story_twice_in_one_fetch_is_one_entry() -> None:
    result = plan(
        [], [candidate("Wahl 2019", link="http://x/1"), candidate("WAHL 2019.", link="http://x/1")]
    )
    assert len(result.new) == 1
    assert result.new[0].title == "Wahl 2019"


def test_same_title_on_one_day_with_own_links_is_two_entries() -> None:
    result = plan(
        [], [candidate("Wahl 2019", link="http://x/1"), candidate("WAHL 2019.", link="http://x/2")]
    )
    assert [e.link for e in result.new] == ["http://x/1", "http://x/2"]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Bürger\u00admeister", "Bürgermeister"),
        ("Rat\u200bhaus", "Rathaus"),
        ("Rat\u2060haus\ufeff", "Rathaus"),
        ("Rat\u200dhaus\u200e", "Rathaus"),  # joiner, left-to-right mark
        ("Rathaus\ufe0f", "Rathaus"),  # variation selector
    ],
)
def test_invisible_characters_do_not_change_the_key(one: str, other: str) -> None:
    assert title_key(one) == title_key(other)


def test_unchanged_refetch_changes_nothing() -> None:
    first = plan([], [candidate("A", link="http://x/a", summary="<p>s</p>")])
    again = plan(
        list(first.new),
        [candidate("A", link="http://x/a", summary="<p>s</p>")],
        now=T0 + timedelta(hours=1),
    )
    assert again.new == ()
    assert again.changed == ()
    assert again.unchanged == 1


def test_corrected_title_with_same_link_updates_the_entry() -> None:
    first = plan([], [candidate("Demokratiekonferenz: Was braucht Wane?", link="http://x/a")])
    later = T0 + timedelta(hours=2)
    second = plan(
        list(first.new),
        [candidate("Demokratiekonferenz: Was braucht Wanne?", link="http://x/a")],
        now=later,
    )
    assert second.new == ()
    (entry,) = second.changed
    assert entry.id == first.new[0].id
    assert entry.title == "Demokratiekonferenz: Was braucht Wanne?"
    assert entry.updated == later
    assert entry.first_seen == T0


def test_guid_match_wins_over_title_and_date() -> None:
    first = plan([], [candidate("Alt", guid="g-1", link="http://x/a")])
    second = plan(list(first.new), [candidate("Neu", day=5, guid="g-1", link="http://x/b")])
    assert second.new == ()
    assert second.changed[0].id == first.new[0].id


def test_shared_link_on_a_page_is_not_used_to_match() -> None:
    # every item links to the same overview page: matching by link would merge them all
    first = plan([], [candidate("A", link="http://x/list"), candidate("B", link="http://x/list")])
    assert len(first.new) == 2
    second = plan(
        list(first.new),
        [
            candidate("A", link="http://x/list"),
            candidate("B", link="http://x/list"),
            candidate("C", link="http://x/list"),
        ],
    )
    assert [e.title for e in second.new] == ["C"]
    assert second.unchanged == 2


def test_undated_item_keeps_its_first_seen_date_on_later_days() -> None:
    first = plan([], [candidate("Ohne Datum", day=None)])
    (entry,) = first.new
    assert entry.published == T0
    assert entry.date_known is False
    second = plan([entry], [candidate("Ohne Datum", day=None)], now=T0 + timedelta(days=3))
    assert second.new == ()
    assert second.unchanged == 1


def test_date_found_later_updates_an_undated_entry() -> None:
    first = plan([], [candidate("Ohne Datum", day=None, link="http://x/a")])
    second = plan(list(first.new), [candidate("Ohne Datum", day=4, link="http://x/a")])
    (entry,) = second.changed
    assert entry.date_known
    assert entry.published == datetime(2019, 2, 4, tzinfo=BERLIN)


def entry(
    source: str, title: str, *, eid: str, seen: datetime, hour: int = 0, day: int = 4
) -> Entry:
    published = datetime(2019, 2, day, hour, 20, tzinfo=BERLIN)
    return make_entry(
        eid,
        source,
        title=title,
        link=f"http://{source}/x",
        published=published,
        seen=seen,
        summary="",
    )


def test_four_sources_one_story_shown_from_the_first_listed_source() -> None:
    order = ["herne", "dortmund", "muelheim", "bochum"]
    dortmund_first = entry("dortmund", STORY + ".", eid="d", seen=T0)
    entries = [
        dortmund_first,
        entry("herne", STORY, eid="h", seen=T0 + timedelta(hours=5)),
        entry("muelheim", STORY.upper(), eid="m", seen=T0 + timedelta(hours=1), hour=9),
        entry("bochum", STORY.replace(" ", "  "), eid="b", seen=T0 + timedelta(hours=2)),
        entry("bochum", "Etwas anderes am selben Tag", eid="b2", seen=T0),
        entry("herne", STORY, eid="h-next-week", seen=T0, day=11),
    ]
    stories = merge_stories(entries, order, BERLIN)
    assert len(stories) == 3
    shared = next(s for s in stories if len(s.origins) == 3)
    assert shared.entry.source_id == "herne"  # Herne's wording
    assert shared.id == "d"  # the copy seen first: stable whichever is shown
    assert [o.source_id for o in shared.origins] == ["dortmund", "muelheim", "bochum"]
    assert shared.updated == T0 + timedelta(hours=5)
    assert [s.published.day for s in stories] == [11, 4, 4]


def test_story_id_is_stable_when_a_higher_priority_source_joins() -> None:
    order = ["herne", "dortmund"]
    alone = merge_stories([entry("dortmund", STORY, eid="d", seen=T0)], order, BERLIN)
    joined = merge_stories(
        [
            entry("dortmund", STORY, eid="d", seen=T0),
            entry("herne", STORY, eid="h", seen=T0 + timedelta(days=1)),
        ],
        order,
        BERLIN,
    )
    assert alone[0].id == joined[0].id == "d"
    assert joined[0].entry.source_id == "herne"


def test_midnight_local_time_is_the_same_calendar_day() -> None:
    # 23:20 UTC on the 3rd is 00:20 on the 4th in Berlin: the same day as a date-only item
    late = make_entry(
        "d", "dortmund", title=STORY, published=datetime(2019, 2, 3, 23, 20, tzinfo=UTC), seen=T0
    )
    day_only = make_entry(
        "h", "herne", title=STORY, published=datetime(2019, 2, 4, tzinfo=BERLIN), seen=T0
    )
    # (window 0: the calendar day alone decides)
    assert len(merge_stories([late, day_only], ["herne", "dortmund"], BERLIN, 0)) == 1
    # read in UTC, the same listing date is the 4th in UTC, and 23:20 UTC is still the 3rd
    day_only_utc = make_entry(
        "h", "herne", title=STORY, published=datetime(2019, 2, 4, tzinfo=UTC), seen=T0
    )
    assert len(merge_stories([late, day_only_utc], ["herne", "dortmund"], UTC, 0)) == 2


_TITLES = st.sampled_from(["Öffentliche Bekanntmachung", "ÖFFENTLICHE BEKANNTMACHUNG.", "Sitzung"])


@given(
    st.lists(
        st.tuples(st.sampled_from(["herne", "bochum"]), _TITLES, st.integers(1, 9)),
        max_size=30,
    ),
    st.sampled_from([0.0, 86400.0, 3 * 86400.0]),
)
def test_stories_with_their_own_guids_are_never_merged_within_a_source(
    rows: list[tuple[str, str, int]], window: float
) -> None:
    entries: list[Entry] = []
    for source in ("herne", "bochum"):
        candidates = [
            candidate(title, day=day, source=source, guid=f"{source}-{n}", link=f"http://{n}")
            for n, (where, title, day) in enumerate(rows)
            if where == source
        ]
        numbers = itertools.count()
        result = plan_source(
            [],
            candidates,
            now=T0,
            zone=BERLIN,
            new_id=lambda s=source, c=numbers: f"{s}-{next(c)}",
        )
        assert len(result.new) == len(candidates)  # every guid its own entry
        entries.extend(result.new)
    stories = merge_stories(entries, ["herne", "bochum"], BERLIN, window)
    assert sorted(e.id for s in stories for e in (s.entry, *s.origins)) == sorted(
        e.id for e in entries
    )  # every entry in exactly one story
    for story in stories:
        copies = (story.entry, *story.origins)
        assert len({e.source_id for e in copies}) == len(copies)  # one copy per source
        if len(copies) > 1:
            assert len({title_key(e.title) for e in copies}) == 1


# Title keys are stored with the entries under dedup.TITLE_KEY_RULES: when title_key gives
# any of these titles another key, the rules changed and the version must be raised (keys
# stored under the old one are then made again), and the keys here written anew.
KEYED_TITLES = {
    "Öffentliche Bekanntmachung:": "öffentliche bekanntmachung",
    "  Stadt\u00adrat \u2013 Sitzung  am  Montag ": "stadtrat - sitzung am montag",
    "„Demokratie leben!“": '"demokratie leben!"',
    "STRASSE ﬁnden…": "strasse finden",
    "Plain-Title 'quoted'.": 'plain - title "quoted"',
    "Straße\u200b\tgesperrt": "strasse gesperrt",
}
KEYED_RULES = 1


def test_the_title_keys_are_those_of_the_rules_version_stored_with_them() -> None:
    assert {title: title_key(title) for title in KEYED_TITLES} == KEYED_TITLES
    assert dedup.TITLE_KEY_RULES == KEYED_RULES


def test_stored_title_keys_group_as_the_keys_made_from_the_titles() -> None:
    order = ["herne", "bochum"]
    entries = [
        make_entry("h1", "herne", title="Stadtrat tagt"),
        make_entry("b1", "bochum", title="STADTRAT TAGT."),
        make_entry("b2", "bochum", title="Anderes", minutes=3),
    ]
    made = merge_stories(entries, order, BERLIN)
    keys = {e.id: title_key(e.title) for e in entries}
    assert merge_stories(entries, order, BERLIN, keys=keys) == made
    assert len(made) == 2
    # the keys given are the ones grouped by (the store gives them as title_key made them)
    apart = merge_stories(entries, order, BERLIN, keys={**keys, "b1": "etwas anderes"})
    assert len(apart) == 3


def test_new_entries_are_made_as_the_dataclass_makes_them() -> None:
    """plan_source makes new entries without the frozen __init__: the same fields in the
    same order, equal, hashed and pickled alike."""
    import pickle

    now = datetime(2026, 3, 1, 8, tzinfo=UTC)
    dated = Candidate("s", "A title", "https://e.example/a", now - timedelta(days=1), "<p>x</p>")
    undated = Candidate("s", "Another", None, None, "", guid="g-1", content="<p>article</p>")
    plan = plan_source([], [dated, undated], now=now, zone=ZoneInfo("Europe/Berlin"))
    for made, candidate in zip(plan.new, (dated, undated), strict=True):
        expected = Entry(
            id=made.id,
            source_id=candidate.source_id,
            title=candidate.title,
            link=candidate.link,
            published=candidate.published or now,
            date_known=candidate.published is not None,
            summary=candidate.summary,
            first_seen=now,
            updated=now,
            guid=candidate.guid,
            content=candidate.content or "",
        )
        assert list(vars(made).items()) == list(vars(expected).items())
        assert made == expected
        assert hash(made) == hash(expected)
        assert pickle.dumps(made) == pickle.dumps(expected)
