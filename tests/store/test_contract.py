"""The store contract (civicfeed/store/__init__.py), the same on every backend."""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from civicfeed.dedup import SourcePlan, Story, title_key
from civicfeed.errors import StoreError
from civicfeed.models import DetailPage, FeedTotals, SourceState, Validators
from civicfeed.store import Store, open_store, parse_state
from store.builders import NOW, make_entry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _save(store: Store, source: str, *entries: object, etag: str | None = None) -> None:
    store.save_success(
        source,
        SourcePlan(new=tuple(entries)),  # type: ignore[arg-type]
        validators=Validators(etag, "Wed, 25 Nov 2026 12:00:00 GMT"),
        item_count=len(entries),
        at=NOW,
    )


def test_an_empty_state_reads_as_nothing_stored(store: Store) -> None:
    assert store.source_state("a") == SourceState("a")
    assert store.entries(["a"]) == []
    assert store.entries([]) == []
    assert store.entry_counts() == {}
    assert store.detail_pages("a") == {}
    assert store.published_digest("f") is None
    assert store.published_feeds() == []
    assert store.removed_feeds() == set()
    assert store.last_refresh() is None
    assert store.fetch_error_counts() == {}
    assert store.archived_pages("f") == []
    assert store.feed_totals() == {}


def test_entries_come_back_as_they_were_saved(store: Store) -> None:
    first = make_entry("urn:1", guid="g1", link="http://x/1", content="<p>Artikel</p>")
    second = make_entry("urn:2", link=None, title="Zweite", minutes=5)
    other = make_entry("urn:3", source="b", guid="g1")  # the same guid in another source
    _save(store, "a", first, second, etag='"v1"')
    _save(store, "b", other)
    assert sorted(store.entries(["a"]), key=lambda e: e.id) == [first, second]
    assert store.entries(["b"]) == [other]
    assert store.entry_counts() == {"a": 2, "b": 1}
    stored = store.entries(["a"])[0]
    assert stored.published.utcoffset() == timedelta(0)
    state = store.source_state("a")
    assert state.validators == Validators('"v1"', "Wed, 25 Nov 2026 12:00:00 GMT")
    assert (state.last_item_count, state.last_success, state.consecutive_failures) == (2, NOW, 0)


def test_entry_heads_leave_out_the_text_and_carry_a_digest_of_all_of_it(store: Store) -> None:
    first = make_entry("urn:1", guid="g1", link="http://x/1", content="<p>Artikel</p>")
    second = make_entry("urn:2", title="Zweite", minutes=5)
    _save(store, "a", first, second)
    _save(store, "b", make_entry("urn:3", "b"))
    heads = {entry.id: (entry, digest) for entry, digest, _ in store.entry_heads(["a"])}
    assert {eid: entry for eid, (entry, _) in heads.items()} == {
        "urn:1": replace(first, summary="", content=""),
        "urn:2": replace(second, summary=""),
    }
    assert store.entry_heads([]) == []
    seen = {digest for _, digest in heads.values()}
    assert len(seen) == 2
    # a change of any one field, or of the article alone, gives the entry another digest
    later = NOW + timedelta(hours=1)
    for changed in (
        replace(first, summary="<p>Neu</p>"),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>"),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu"),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", link=None),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", guid="g2"),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", updated=later),
        replace(first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", published=later),
        replace(
            first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", first_seen=later
        ),
        replace(
            first, summary="<p>Neu</p>", content="<p>Anders</p>", title="Neu", date_known=False
        ),
    ):
        store.save_success(
            "a", SourcePlan(changed=(changed,)), validators=Validators(), item_count=2, at=NOW
        )
        (digest,) = [d for entry, d, _ in store.entry_heads(["a"]) if entry.id == "urn:1"]
        assert digest not in seen, changed
        seen.add(digest)
    # the same entry stored again: the same digest
    before = store.entry_heads(["b"])
    store.save_success(
        "b",
        SourcePlan(changed=(make_entry("urn:3", "b"),)),
        validators=Validators(),
        item_count=1,
        at=NOW,
    )
    assert store.entry_heads(["b"]) == before


def test_entry_heads_carry_the_title_key_made_by_the_rules_of_this_release(
    state: str, store: Store
) -> None:
    titles = ["Öffentliche Bekanntmachung:", "  Stadt\u00adrat – Sitzung ", "Plain title"]
    _save(store, "a", *(make_entry(f"urn:{n}", title=t) for n, t in enumerate(titles)))
    keys = {entry.title: key for entry, _, key in store.entry_heads(["a"])}
    assert keys == {title: title_key(title) for title in titles}
    # a key stored under other rules is not taken: it is made again
    before = sorted(store.entry_heads(["a"]), key=lambda head: head[0].id)
    _execute(state, "UPDATE entries SET title_key = '0:' || title_key")
    assert {entry.title: key for entry, _, key in store.entry_heads(["a"])} == keys
    # nor is a digest missing: it is made from the whole entry
    _execute(state, "UPDATE entries SET digest = NULL WHERE id = 'urn:1'")
    assert sorted(store.entry_heads(["a"]), key=lambda head: head[0].id) == before


def test_a_plan_s_title_keys_are_stored_and_an_entry_without_one_gets_its_own(
    store: Store,
) -> None:
    # the keys planning made are stored as they are; an entry the plan has none for gets
    # the key title_key makes
    with_key = make_entry("urn:1", title="Stadtrat – Sitzung")
    without = make_entry("urn:2", title="Öffentliche Bekanntmachung:", minutes=1)
    changed = make_entry("urn:3", title="Haushalt", minutes=2)
    keys = {"urn:1": "key made by planning", "urn:3": "another key"}
    store.save_success(
        "a",
        SourcePlan(new=(with_key, without), changed=(changed,), keys=keys),
        validators=Validators(),
        item_count=3,
        at=NOW,
    )
    stored = {entry.id: key for entry, _, key in store.entry_heads(["a"])}
    assert stored == {
        "urn:1": "key made by planning",
        "urn:2": title_key(without.title),
        "urn:3": "another key",
    }


def test_times_of_one_save_that_differ_only_by_fold_are_stored_as_two_instants(
    store: Store,
) -> None:
    # 02:30 in Berlin on 25 October 2026 happens twice; the two readings are equal as
    # datetimes of one zone, and hash alike, but are an hour apart
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)
    second = first.replace(fold=1)
    _save(
        store,
        "a",
        make_entry("urn:1", published=first, seen=first),
        make_entry("urn:2", published=second, seen=second),
    )
    stored = {entry.id: entry for entry in store.entries(["a"])}
    assert stored["urn:1"].published == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert stored["urn:2"].published == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert stored["urn:2"].first_seen == stored["urn:2"].updated == stored["urn:2"].published


def test_whole_entries_are_the_heads_with_their_text_when_few_enough(store: Store) -> None:
    first = make_entry("urn:1", guid="g1", link="http://x/1", content="<p>Artikel</p>")
    second = make_entry("urn:2", title="Zweite", minutes=5)
    _save(store, "a", first, second)
    _save(store, "b", make_entry("urn:3", "b"))
    heads = {entry.id: (digest, key) for entry, digest, key in store.entry_heads(["a"])}
    for at_most in (2, 3, 100):
        whole = store.whole_entries(["a"], at_most)
        assert whole is not None
        assert sorted(entry.id for entry, _, _ in whole) == ["urn:1", "urn:2"]
        for entry, digest, key in whole:
            assert entry == {"urn:1": first, "urn:2": second}[entry.id]
            assert list(vars(entry)) == list(vars(first))  # its fields in their order
            assert (digest, key) == heads[entry.id]
    assert store.whole_entries(["a"], 1) is None  # more than that: not read whole
    assert store.whole_entries(["a", "b"], 2) is None
    assert store.whole_entries([], 5) == []
    assert store.whole_entries(["z"], 5) == []


def test_entries_by_id_come_whole_and_leave_out_ids_not_stored(store: Store) -> None:
    first = make_entry("urn:1", guid="g1", link="http://x/1", content="<p>Artikel</p>")
    second = make_entry("urn:2", "b", title="Zweite", minutes=5)
    many = [make_entry(f"urn:m{n}", "c", minutes=n) for n in range(1100)]
    _save(store, "a", first)
    _save(store, "b", second)
    _save(store, "c", *many)
    found = store.entries_by_id(["urn:2", "urn:9", "urn:1", "urn:1"])
    assert sorted(found, key=lambda e: e.id) == [first, second]
    # made without the dataclass's __init__: the same fields, in the same order, pickled alike
    for read, saved in zip(sorted(found, key=lambda e: e.id), (first, second), strict=True):
        assert list(vars(read).items()) == list(vars(saved).items())
        assert pickle.loads(pickle.dumps(read)) == saved
    assert store.entries_by_id([]) == []
    # more ids than one read binds
    wanted = [e.id for e in reversed(many)]
    assert sorted(store.entries_by_id(wanted), key=lambda e: e.id) == sorted(
        many, key=lambda e: e.id
    )


def test_a_changed_entry_replaces_its_stored_version(store: Store) -> None:
    _save(store, "a", make_entry("urn:1", guid="g1", title="Alt"))
    changed = make_entry("urn:1", guid="g1", title="Neu", content="<p>Text</p>")
    store.save_success(
        "a", SourcePlan(changed=(changed,)), validators=Validators(), item_count=1, at=NOW
    )
    assert store.entries(["a"]) == [changed]


def test_a_source_update_is_one_transaction(store: Store) -> None:
    good = make_entry("urn:1")
    broken = make_entry("urn:2", title=None)  # type: ignore[arg-type]  # NOT NULL refuses it
    with pytest.raises(StoreError):
        _save(store, "a", good, broken, etag="e")
    assert store.entries(["a"]) == []  # the first entry was rolled back with the second
    assert store.source_state("a").validators.etag is None


def test_a_guid_names_one_entry_per_source(store: Store) -> None:
    _save(store, "a", make_entry("urn:1", guid="g"))
    with pytest.raises(StoreError):  # a racing writer's copy is refused, not a duplicate
        _save(store, "a", make_entry("urn:2", guid="g"))
    _save(store, "a", make_entry("urn:3"), make_entry("urn:4"))  # entries without a guid
    assert sorted(e.id for e in store.entries(["a"])) == ["urn:1", "urn:3", "urn:4"]


def test_failures_are_counted_and_a_success_resets_them(store: Store) -> None:
    store.save_failure("a", "timeout", NOW)
    store.save_failure("a", "HTTP 500", NOW + timedelta(minutes=1))
    state = store.source_state("a")
    assert (state.last_error, state.last_error_at, state.consecutive_failures) == (
        "HTTP 500",
        NOW + timedelta(minutes=1),
        2,
    )
    store.save_not_modified("a", NOW + timedelta(minutes=2))
    state = store.source_state("a")
    assert (state.consecutive_failures, state.last_success) == (0, NOW + timedelta(minutes=2))
    assert state.last_error == "HTTP 500"  # the last error stays known


def test_detail_pages_are_remembered_per_source(store: Store) -> None:
    page = DetailPage("http://x/1", Validators('"d"', None), NOW, 1, "digest")
    store.save_success(
        "a", SourcePlan(), validators=Validators(), item_count=0, at=NOW, details=[page]
    )
    again = DetailPage("http://x/1", Validators('"d2"', None), NOW, 0, None)
    store.save_success(
        "a", SourcePlan(), validators=Validators(), item_count=0, at=NOW, details=[again]
    )
    assert store.detail_pages("a") == {"http://x/1": again}
    assert store.detail_pages("b") == {}


def test_published_and_removed_feeds(store: Store) -> None:
    store.save_published_digest("f", "d1")
    store.save_published_digest("f", "d2")
    store.save_published_digest("g", "d3")
    assert store.published_digest("f") == "d2"
    assert sorted(store.published_feeds()) == ["f", "g"]
    store.mark_removed("g", NOW)
    assert store.published_feeds() == ["f"]
    assert store.removed_feeds() == {"g"}
    store.save_published_digest("g", "d4")  # back in the configuration
    assert store.removed_feeds() == set()


def test_digests_and_totals_saved_together_are_saved_as_one_by_one(store: Store) -> None:
    store.mark_removed("g", NOW)
    store.save_published_digests([("f", "d1"), ("g", "d2"), ("f", "d3")])
    store.save_published_digests([])
    assert store.published_digest("f") == "d3"  # in their order: the last one stays
    assert store.published_digest("g") == "d2"
    assert store.removed_feeds() == set()
    newest = make_entry("urn:1", title="Neueste Meldung")
    store.save_all_feed_totals(
        [FeedTotals("f", 1, NOW), FeedTotals("g", 2, NOW, newest), FeedTotals("f", 3, NOW)]
    )
    store.save_all_feed_totals([])
    assert store.feed_totals() == {
        "f": FeedTotals("f", 3, NOW),
        "g": FeedTotals("g", 2, NOW, newest),
    }


def test_refreshes_keep_the_last_time_and_add_up_the_errors(store: Store) -> None:
    store.save_refresh(NOW, 1.5, {"timeout": 2})
    store.save_refresh(NOW + timedelta(hours=1), 2.25, {"timeout": 1, "http": 3})
    assert store.last_refresh() == (NOW + timedelta(hours=1), 2.25)
    assert store.fetch_error_counts() == {"timeout": 3, "http": 3}


def test_archive_pages_are_frozen_and_kept_in_an_unbroken_run(store: Store) -> None:
    def page(*ids: str) -> list[Story]:
        return [Story(i, make_entry(i), (make_entry(i + "b", "b"),), NOW) for i in ids]

    store.save_archived_page("f", 1, page("urn:1", "urn:2"), NOW)
    store.save_archived_page("f", 1, page("urn:9"), NOW)  # a page stored is never replaced
    store.save_archived_page("f", 3, page("urn:3"), NOW)  # page 2 missing: 3 is not shown
    assert store.archived_pages("f") == [page("urn:1", "urn:2")]
    assert store.archived_pages("g") == []
    assert store.archived_page_ids("f") == [["urn:1", "urn:2"]]
    assert store.archived_page_ids("g") == []
    assert store.archived_page("f", 1) == page("urn:1", "urn:2")
    assert store.archived_page("f", 2) is None


def test_archive_pages_saved_together_are_stored_as_one_by_one_all_or_none(
    store: Store,
) -> None:
    def page(*ids: str) -> list[Story]:
        return [
            Story(i, make_entry(i), (make_entry(i + "b", "b"),), NOW + timedelta(minutes=1))
            for i in ids
        ]

    store.save_archived_page("f", 1, page("urn:1"), NOW)
    store.save_archived_pages("f", [(1, page("urn:9")), (2, page("urn:2", "urn:3"))], NOW)
    store.save_archived_page("g", 1, page("urn:1"), NOW)
    store.save_archived_page("g", 2, page("urn:2", "urn:3"), NOW)
    assert store.archived_pages("f") == store.archived_pages("g")
    assert store.archived_pages("f") == [page("urn:1"), page("urn:2", "urn:3")]

    def broken() -> Iterator[tuple[int, list[Story]]]:
        yield 3, page("urn:4")
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        store.save_archived_pages("f", broken(), NOW)
    assert len(store.archived_pages("f")) == 2  # page 3 is not stored without the rest


def test_archive_page_ids_come_in_page_order_whatever_the_text_holds(store: Store) -> None:
    # ids with characters JSON escapes, and summaries that look like the stored layout
    odd = ['urn:"quoted"', "urn:back\\slash", "urn:ü"]
    tricky = '{"id": "urn:fake", "entry": {"id": "urn:fake"'
    for number in range(1, 40):
        ids = [f"urn:{number}:{k}" for k in range(3)] + (odd if number == 7 else [])
        stories = [
            Story(i, make_entry(i, summary=tricky), (make_entry(i + "b", "b"),), NOW) for i in ids
        ]
        store.save_archived_page("f", number, stories, NOW)
    pages = store.archived_page_ids("f")
    assert pages == [[s.id for s in page] for page in store.archived_pages("f")]
    assert len(pages) == 39
    assert pages[6][3:] == odd
    assert pages[38] == ["urn:39:0", "urn:39:1", "urn:39:2"]


def test_feed_totals_are_kept_per_feed_and_replaced_whole(state: str, store: Store) -> None:
    newest = make_entry("urn:1", title="Neueste Meldung", link="https://stadt.example/1")
    store.save_feed_totals(FeedTotals("f", 3, NOW + timedelta(hours=2), newest))
    store.save_feed_totals(FeedTotals("leer", 0, EPOCH))
    assert store.feed_totals() == {
        "f": FeedTotals("f", 3, NOW + timedelta(hours=2), newest),
        "leer": FeedTotals("leer", 0, EPOCH),
    }
    store.save_feed_totals(FeedTotals("f", 4, NOW + timedelta(hours=3)))  # the newest is gone
    # another process sees what this one saved, and replaces it in turn
    other = open_store(state)
    try:
        assert other.feed_totals()["f"] == FeedTotals("f", 4, NOW + timedelta(hours=3))
        other.save_feed_totals(FeedTotals("f", 5, NOW + timedelta(hours=4), newest))
    finally:
        other.close()
    assert store.feed_totals()["f"] == FeedTotals("f", 5, NOW + timedelta(hours=4), newest)
    assert store.rows("feed_summaries")  # copied by migrate-state


def test_prune_deletes_the_sources_not_kept(store: Store) -> None:
    _save(store, "a", make_entry("urn:1"))
    _save(store, "b", make_entry("urn:2", "b"), make_entry("urn:3", "b"))
    store.save_failure("c", "gone", NOW)
    assert store.prune(["a"]) == {"b": 2, "c": 0}
    assert store.entry_counts() == {"a": 1}
    assert store.source_state("c") == SourceState("c")
    assert store.prune(["a"]) == {}
    assert store.prune([]) == {"a": 1}  # none kept: every source goes, on every backend
    assert store.entry_counts() == {}


def test_migrate_is_idempotent_and_a_second_open_changes_nothing(state: str) -> None:
    first = open_store(state)
    version = first.schema_version
    assert version >= 1
    _save(first, "a", make_entry("urn:1"))
    first.migrate()
    first.close()
    again = open_store(state)
    try:
        assert again.schema_version == version
        assert [e.id for e in again.entries(["a"])] == ["urn:1"]
    finally:
        again.close()


def _execute(state: str, *statements: str) -> None:
    """Statements run on the state's database directly, beside the store."""
    location = parse_state(state)
    if location.path is not None:
        db = sqlite3.connect(location.path)
        with db:
            for statement in statements:
                db.execute(statement)
        db.close()
        return
    import psycopg

    assert location.url is not None
    with psycopg.connect(location.url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)


def _previous_schema(state: str, version: int) -> None:
    """The state as the schema before entries had a digest and a title key left it: the
    columns dropped and the two migrations that added them no longer recorded."""
    _execute(
        state,
        "ALTER TABLE entries DROP COLUMN title_key",
        "ALTER TABLE entries DROP COLUMN digest",
        f"DELETE FROM schema_version WHERE version >= {version - 1}",
    )


def test_a_state_of_the_previous_schema_keeps_every_entry_and_gets_digests_and_keys(
    state: str,
) -> None:
    entries = [
        make_entry("urn:1", guid="g1", link="http://x/1", content="<p>Artikel</p>"),
        make_entry("urn:2", title="Zweite", minutes=5),
        *(make_entry(f"urn:m{n}", "b", minutes=n) for n in range(700)),  # more than a batch
    ]
    first = open_store(state)
    _save(first, "a", *entries[:2])
    _save(first, "b", *entries[2:])
    version = first.schema_version
    heads = sorted(first.entry_heads(["a", "b"]), key=lambda head: head[0].id)
    first.close()
    _previous_schema(state, version)
    again = open_store(state, read_only=True)  # an older schema is migrated first
    try:
        assert again.schema_version == version
        assert sorted(again.entries(["a", "b"]), key=lambda e: e.id) == sorted(
            entries, key=lambda e: e.id
        )
        # the same digests and title keys as those written with the entries
        assert sorted(again.entry_heads(["a", "b"]), key=lambda head: head[0].id) == heads
        assert all(row[-1] and row[-2] for row in again.rows("entries"))  # digest, key
    finally:
        again.close()


def test_opening_without_migrating_leaves_the_schema_alone(state: str) -> None:
    bare = open_store(state, migrate=False)
    try:
        assert bare.schema_version == 0
        bare.migrate()
        assert bare.schema_version >= 1
    finally:
        bare.close()


def test_a_read_only_store_reads_and_never_writes(state: str) -> None:
    bare = open_store(state, migrate=False)
    assert bare.schema_version == 0
    bare.close()
    # an older schema (here: none) is migrated first, as a writer would
    open_store(state, read_only=True).close()
    writer = open_store(state, migrate=False)
    assert writer.schema_version > 0
    _save(writer, "a", make_entry("urn:1"))
    reader = open_store(state, read_only=True)
    try:
        assert [e.id for e in reader.entries(["a"])] == ["urn:1"]
        with pytest.raises(StoreError):
            reader.save_failure("a", "x", NOW)
        assert reader.source_state("a").consecutive_failures == 0
    finally:
        reader.close()
        writer.close()


def test_concurrent_writers_lose_no_update(state: str) -> None:
    """Four stores (four connections, as four processes would have) write at once."""
    stores = [open_store(state) for _ in range(4)]
    errors: list[BaseException] = []

    def work(n: int, store: Store) -> None:
        try:
            for i in range(10):
                store.save_failure("shared", f"w{n}", NOW)
                _save(store, f"s{n}", *[make_entry(f"urn:{n}:{j}", f"s{n}") for j in range(i)])
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert stores[0].source_state("shared").consecutive_failures == 40
        assert stores[0].entry_counts() == {f"s{n}": 9 for n in range(4)}
    finally:
        for store in stores:
            store.close()


def test_a_lease_is_held_by_one_holder_until_it_expires_or_is_released(store: Store) -> None:
    later = NOW + timedelta(minutes=5)
    assert store.claim("source:a", "w1", until=later, now=NOW)
    assert not store.claim("source:a", "w2", until=later, now=NOW)  # held
    assert store.claim("source:b", "w2", until=later, now=NOW)  # another name is free
    assert store.claim("source:a", "w1", until=later, now=NOW)  # the holder renews it
    store.release("source:a", "w2")  # not the holder's: nothing happens
    assert not store.claim("source:a", "w2", until=later, now=NOW + timedelta(minutes=1))
    # expired (its holder died): the next claimant takes it, and the old holder lost it
    assert store.claim("source:a", "w2", until=later + timedelta(minutes=5), now=later)
    assert not store.claim("source:a", "w1", until=later, now=later)
    store.release("source:a", "w2")
    assert store.claim("source:a", "w3", until=later, now=NOW)


def test_of_many_processes_claiming_at_once_exactly_one_gets_the_lease(state: str) -> None:
    stores = [open_store(state) for _ in range(6)]
    start = threading.Barrier(len(stores))
    won: list[str] = []

    def claim(n: int, store: Store) -> None:
        start.wait()
        for round_ in range(20):
            if store.claim(f"source:{round_}", f"w{n}", until=NOW + timedelta(1), now=NOW):
                won.append(f"{round_}:{n}")

    threads = [threading.Thread(target=claim, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(int(w.split(":")[0]) for w in won) == list(range(20))  # one winner a round
