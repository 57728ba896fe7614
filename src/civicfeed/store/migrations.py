"""Numbered schema migrations of the SQLite store. Append only: a released migration is never
edited. The PostgreSQL store numbers its own (store/postgres.py); a migration that changes the
logical schema (store.TABLES) is written for both.

Statements may call ``xml_safe(text)``, which the store registers on its connection: the text
without the characters XML cannot carry (civicfeed.xmlsafe).
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            last_item_count INTEGER,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0
        )""",
            """CREATE TABLE entries (
            id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL,
            guid TEXT,
            link TEXT,
            title TEXT NOT NULL,
            published TEXT NOT NULL,
            date_known INTEGER NOT NULL,
            summary TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            updated TEXT NOT NULL
        )""",
            "CREATE INDEX entries_by_source ON entries (source_id, published)",
        ),
    ),
    # what each feed's files were last rendered from, so that unchanged feeds are not rendered
    (
        2,
        (
            """CREATE TABLE published (
            feed_id TEXT PRIMARY KEY,
            digest TEXT NOT NULL
        )""",
        ),
    ),
    # entries stored before every candidate was made XML-safe may hold control characters
    # that the sanitiser decoded from character references (&#x0B;, &amp;#1;): repaired
    (
        3,
        (
            """UPDATE entries SET title = xml_safe(title), link = xml_safe(link),
            summary = xml_safe(summary), guid = xml_safe(guid)""",
        ),
    ),
    # dates outside 1900-2200 are unknown (year 1, year 9999, local mean time offsets):
    # entries stored with one get the time they were first seen, as undated ones do
    (
        4,
        (
            """UPDATE entries SET published = first_seen, date_known = 0
            WHERE published < '1900' OR published >= '2201'""",
        ),
    ),
)

MIGRATIONS += (
    # for monitoring: the last completed refresh and the fetch errors by kind, over all runs;
    # feeds removed from the configuration, so that the server answers 410 Gone for them
    (
        5,
        (
            """CREATE TABLE IF NOT EXISTS last_refresh (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            finished_at TEXT NOT NULL,
            seconds REAL NOT NULL
        )""",
            """CREATE TABLE IF NOT EXISTS fetch_errors (
            kind TEXT PRIMARY KEY,
            count INTEGER NOT NULL
        )""",
            """CREATE TABLE IF NOT EXISTS removed_feeds (
            feed_id TEXT PRIMARY KEY,
            removed_at TEXT NOT NULL
        )""",
        ),
    ),
)

MIGRATIONS += (
    # full text (follow): the article read from an entry's detail page, and what each detail
    # page said about itself, so that it is requested again only conditionally
    (
        6,
        (
            """CREATE TABLE IF NOT EXISTS articles (
            entry_id TEXT PRIMARY KEY,
            content TEXT NOT NULL
        )""",
            """CREATE TABLE IF NOT EXISTS detail_pages (
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            checked TEXT,
            failures INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source_id, url)
        )""",
        ),
    ),
)

MIGRATIONS += (
    # detail pages read for a date that showed none: not read again until the listing changes
    (7, ("ALTER TABLE detail_pages ADD COLUMN undated_listing TEXT",)),
)

MIGRATIONS += (
    # RFC 5005 archive pages as they were when complete: their stories, in order, as JSON
    (
        8,
        (
            """CREATE TABLE archive_pages (
            feed_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            stories TEXT NOT NULL,
            completed_at TEXT NOT NULL,
            PRIMARY KEY (feed_id, number)
        )""",
        ),
    ),
)

MIGRATIONS += (
    # per source: a digest of the extraction settings its entries were read with (a change
    # makes the next refresh fetch and read the page again), and the title and language the
    # source itself declared, for its feed when the configuration names none
    (
        9,
        (
            "ALTER TABLE sources ADD COLUMN settings TEXT",
            "ALTER TABLE sources ADD COLUMN own_title TEXT",
            "ALTER TABLE sources ADD COLUMN own_language TEXT",
        ),
    ),
)

MIGRATIONS += (
    # within a source a guid names one entry: a race between two writers cannot duplicate it
    # (entries that already share one keep the oldest as its holder; the others lose the guid
    # and are matched by link and title, as entries without one are)
    (
        10,
        (
            """UPDATE entries SET guid = NULL WHERE guid IS NOT NULL AND rowid NOT IN
            (SELECT MIN(rowid) FROM entries WHERE guid IS NOT NULL GROUP BY source_id, guid)""",
            """CREATE UNIQUE INDEX entries_source_guid ON entries (source_id, guid)
            WHERE guid IS NOT NULL""",
        ),
    ),
)

MIGRATIONS += (
    # leases: the right to refresh a source, held by one process until it expires
    (
        11,
        (
            """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until TEXT NOT NULL
        )""",
        ),
    ),
)

MIGRATIONS += (
    # the published files, for `publish_to: database`: served and exported from the state
    (
        12,
        (
            """CREATE TABLE outputs (
            name TEXT PRIMARY KEY,
            data BLOB NOT NULL,
            etag TEXT NOT NULL,
            modified TEXT NOT NULL,
            media_type TEXT NOT NULL
        )""",
        ),
    ),
)

MIGRATIONS += (
    # per feed, what the index and the OPML file say of it: they are rendered from here,
    # without reading every feed's entries, by whichever process publishes
    (
        13,
        (
            """CREATE TABLE feed_summaries (
            feed_id TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            updated TEXT NOT NULL,
            newest TEXT
        )""",
        ),
    ),
)

MIGRATIONS += (
    # per entry, the digest of all its fields and its article (store/records.py), so that a
    # feed's stories are merged and compared without reading their text; filled in for the
    # entries stored before by the migration loop (store/writes.py), as for every entry
    # whose digest a later migration sets to NULL (as one that changes entries must)
    (14, ("ALTER TABLE entries ADD COLUMN digest TEXT",)),
)

MIGRATIONS += (
    # per entry, its title key (dedup.title_key, marked with the version of its rules), so
    # that an aggregate's stories are merged without making every key again; filled in as
    # the digests are
    (15, ("ALTER TABLE entries ADD COLUMN title_key TEXT",)),
)

LATEST = MIGRATIONS[-1][0]
assert [m[0] for m in MIGRATIONS] == list(range(1, LATEST + 1)), "migrations are numbered 1, 2, …"
