"""Render and write: every feed of the configuration, in every format, plus the index.

For each feed (one per source, one per aggregate) the stories are taken from the store and
written as RSS, Atom, JSON Feed and a readable HTML page; older stories beyond max_entries go
to RFC 5005 archive pages. Files are replaced only when their bytes change.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import __version__, clock
from .config import Aggregate, Config, Source
from .dedup import Story, merge_stories
from .errors import WriteError
from .models import Entry, FeedTotals, SourceState
from .render import (
    STYLESHEET_NAME,
    Archive,
    FeedInfo,
    FeedSummary,
    SourceRef,
    feed_updated,
    render_atom,
    render_index,
    render_json,
    render_opml,
    render_preview,
    render_rss,
    stylesheet,
)
from .render.model import EPOCH
from .store import Store, open_store
from .write import FolderOutput, Output, open_output

__all__ = [
    "FeedSpec",
    "PublishReport",
    "Publisher",
    "feed_specs",
    "feeds_of",
    "page_stories",
    "source_language",
    "source_title",
    "stale_digest",
]

INDEX_NAME = "index.html"
OPML_NAME = "feeds.opml"


@dataclass(frozen=True)
class FeedSpec:
    info: FeedInfo
    members: tuple[str, ...]  # source ids, in priority order
    max_entries: int


@dataclass(frozen=True)
class PublishReport:
    written: tuple[str, ...] = ()  # names of the files changed, relative to the output
    errors: tuple[str, ...] = ()
    changed_feeds: tuple[str, ...] = ()  # ids of feeds whose subscription documents changed


def source_title(source: Source, declared: SourceState | None = None) -> str:
    """A source's name: its configured title, else the title its feed or page declared when
    last read (kept in the store), else its host."""
    if source.title:
        return source.title
    if declared is not None and declared.title:
        return declared.title
    return urlsplit(source.url).hostname or source.url


def source_language(config: Config, source: Source, declared: SourceState | None = None) -> str:
    """Its configured language, else the one a feed source declares, else the top level's."""
    if source.language:
        return source.language
    if source.html is None and declared is not None and declared.language:
        return declared.language
    return config.language


def feed_specs(config: Config, declared: Mapping[str, SourceState] | None = None) -> list[FeedSpec]:
    """Every feed of the configuration; ``declared``: what the store knows of each source
    (the title and language it declared), for sources whose configuration names none."""
    known = declared or {}
    refs = {
        source.id: _source_ref(config, source, known.get(source.id)) for source in config.sources
    }
    specs = [
        FeedSpec(
            _source_info(config, source, refs, known.get(source.id)),
            (source.id,),
            source.max_entries,
        )
        for source in config.sources
    ]
    for aggregate in config.feeds:
        members = config.members(aggregate)
        specs.append(
            FeedSpec(
                _aggregate_info(config, aggregate, members, refs),
                tuple(m.id for m in members),
                aggregate.max_entries,
            )
        )
    return specs


def page_stories(
    stories: Sequence[Story], size: int, frozen: Sequence[Sequence[Story]] = ()
) -> tuple[list[Story], list[list[Story]]]:
    """(subscription document, complete archive pages oldest first).

    Stories are numbered in the order they were first seen, which never changes: page k holds
    numbers (k-1)·size+1 … k·size and is published once complete. The subscription document
    holds the last ``size`` stories to arrive, so with the pages it covers every story.

    ``frozen``: the pages completed before, exactly as they were then (see the store). They
    come back unchanged, whatever later corrections or merges did to their stories; the
    stories that are in none of them make the pages after.
    """
    current, fresh = _paging(stories, size, [[story.id for story in page] for page in frozen])
    return current, [list(page) for page in frozen] + fresh


def _paging(
    stories: Sequence[Story], size: int, frozen: Sequence[Sequence[str]]
) -> tuple[list[Story], list[list[Story]]]:
    """``page_stories`` given the ids of the frozen pages: (subscription document, the
    pages completed after them)."""
    merged = any(story.origins for story in stories)
    sequence = sorted(stories, key=_arrival if merged else _arrival_of_one)
    archived = {story_id for page in frozen for story_id in page}
    rest = [story for story in sequence if story.id not in archived]
    pages = [rest[start : start + size] for start in range(0, len(rest) - size + 1, size)]
    current = sorted(sequence[-size:], key=_newest_first)
    return current, [sorted(page, key=_newest_first) for page in pages if len(page) == size]


def _arrival(story: Story) -> tuple[object, ...]:
    """The order stories are numbered in: first seen, published, id (the fields read
    directly: the key of every story of an aggregate)."""
    entry = story.entry
    seen = entry.first_seen if not story.origins else _first_seen(story)
    return (seen, entry.published, story.id)


# ``_arrival`` of a story of one copy, read in C
_arrival_of_one = attrgetter("entry.first_seen", "entry.published", "id")


def _first_seen(story: Story) -> object:
    if not story.origins:
        return story.entry.first_seen
    return min(copy.first_seen for copy in (story.entry, *story.origins))


def _newest_first(story: Story) -> tuple[object, ...]:
    return (-story.published.timestamp(), -story.entry.first_seen.timestamp(), story.id)


@dataclass
class Publisher:
    """Writes the files of a configuration; remembers each feed's summary for the index, so
    that after one source's refresh only the feeds it is part of need rendering."""

    config: Config
    summaries: dict[str, FeedSummary] = field(default_factory=dict)

    def publish(
        self,
        store: Store,
        affected: Iterable[str] | None = None,
        *,
        untouched: Iterable[str] = (),
        feeds: Iterable[str] | None = None,
        site: bool = True,
    ) -> PublishReport:
        """Render the feeds that include an ``affected`` source (all when None); write what
        changed; then the index, the OPML file and the stylesheet.

        ``untouched``: sources whose stored entries the caller knows did not change since the
        feeds were last published (see ``feeds_of`` and ``stale_digest``). A feed made only of
        them, whose stored digest was made from the same description and whose files are on
        disk, is left alone without reading its entries. The index and the OPML file are
        rendered from the totals of every feed kept in the store (``Store.feed_totals``),
        without reading any feed's entries, and only when a feed's totals or description
        changed or a feed is waiting for its first fetch (or when ``untouched`` is not
        given); several processes publishing from one state leave an index of the totals
        last saved.

        ``feeds``: only these feeds are rendered (the workers publish one feed per job);
        ``site``: whether the index, the OPML file and the stylesheet are written at all. With
        ``feeds`` given and ``site``, the index is always rendered (from the stored totals).
        """
        config = self.config
        chosen = None if affected is None else set(affected)
        quiet = set(untouched)
        written: list[str] = []
        errors: list[str] = []
        changed: list[str] = []
        output = open_output(config, store)  # flushed once, before any digest is saved
        digests: list[tuple[str, str]] = []
        unsaved: list[FeedTotals] = []  # the feeds' totals that changed, saved together
        output.begin()
        states = store.source_states()  # one read, not one per source
        specs = feed_specs(config, states)
        zone = _zone(config)
        totals = store.feed_totals()
        site_due = not quiet or feeds is not None
        only = None if feeds is None else set(feeds)
        due: list[FeedSpec] = []
        for spec in specs:
            if only is not None and spec.info.id not in only:
                continue
            if (
                chosen is not None
                and spec.info.id in self.summaries
                and not chosen.intersection(spec.members)
            ):
                continue
            if quiet.issuperset(spec.members) and self._still_published(store, spec, zone, output):
                if spec.info.id not in totals:  # published before totals were kept
                    stories, _, _ = self._stories(store, spec)
                    site_due |= self._summarise(store, spec, stories, totals)
                continue
            due.append(spec)

        def take(done: _Published) -> bool:
            return self._take(done, store, totals, unsaved, written, errors, changed, digests)

        share = _Share(config) if _poolable(output) else None
        pooled = _pooled(config, output, due, totals, zone, share)
        for spec in due:
            if spec.info.id in pooled.feeds:
                continue
            saver = _saver(store, spec)
            done = self._publish_feed(store, spec, zone, output, totals, saver, share)
            site_due |= take(done)
        for done in pooled.results():
            site_due |= take(done)
        for spec in due:  # what the workers could not do is done here
            if spec.info.id in pooled.failed:
                saver = _saver(store, spec)
                done = self._publish_feed(store, spec, zone, output, totals, saver, share)
                site_due |= take(done)
        if share is not None:
            share.close()
        store.save_all_feed_totals(unsaved)  # one transaction, before the index reads them
        if site:
            self._write([(STYLESHEET_NAME, stylesheet())], written, errors, output)
        if site and (site_due or not self._site_current(output)):
            self._write_site(store, specs, states, written, errors, output)
        try:
            output.flush()  # the files are there for good before the store says they are done
        except WriteError as exc:
            errors.append(str(exc))
            digests = []
        store.save_published_digests(digests)  # one transaction
        if affected is None and site:
            self._remove_gone(store, specs, errors, output)
        return PublishReport(tuple(written), tuple(errors), tuple(changed))

    def _publish_feed(
        self,
        store: Store,
        spec: FeedSpec,
        zone: str,
        output: Output,
        totals: Mapping[str, FeedTotals],
        save_pages: Callable[[Sequence[tuple[int, Sequence[Story]]]], None],
        share: _Share | None = None,
    ) -> _Published:
        """Render and write one feed whose stories may have changed. The archive pages it
        completes go to ``save_pages`` (all at once, by number) before anything is rendered;
        its totals (where they differ from ``totals``) and its digest come back, to be saved
        by the caller (the digest once the files are flushed). ``share``: the archive pages
        to render may go to the worker processes as well (``_PageJobs``; only where
        ``save_pages`` stores them)."""
        feed = spec.info.id
        with _uncollected():
            # the stories without their text (summaries, articles), with every entry's
            # digest: the full entries are read only of the stories rendered (see _filled);
            # or all of them whole at once (``whole``), where all of them are rendered
            stories, digests, whole = self._stories(store, spec, totals.get(feed))
            pending = None if stories or spec.info.aggregate else _never_fetched(store, spec)
            if pending is not None:  # no file until there is something true to say
                return _Published(feed, site_due=True)
            archived = store.archived_page_ids(feed)  # ids only: a page is decoded if rendered
            frozen = len(archived)
            current, fresh = _paging(stories, spec.max_entries, archived)
            del archived
            pages = frozen + len(fresh)
            counted = feed_totals(feed, stories)
            made = None if totals.get(feed) == counted else counted
            if not stories:  # dated when first written, not 1970
                now = clock.now()
                spec = replace(spec, info=replace(spec.info, empty_since=now))
            digest = _digest(spec, stories, zone, pages, digests)
            del stories, digests
        with _uncollected():  # the fresh pages' whole stories and their JSON: no cycles
            try:
                # the fresh pages read whole a few at a time, each in place of its stories
                # without text, so that the feed's stories are not held twice at once
                for start in range(0, 0 if whole else len(fresh), _FILLED_PAGES):
                    fresh[start : start + _FILLED_PAGES] = _filled(
                        store, fresh[start : start + _FILLED_PAGES]
                    )
            except WriteError as exc:
                return _Published(feed, errors=(f"feed {feed} cannot be rendered: {exc}",))
            if fresh:  # complete: their stories and their order never change again
                save_pages(list(enumerate(fresh, start=frozen + 1)))
        before = store.published_digest(feed)
        if digest == before and all(output.exists(name) for name in _file_names(spec, pages)):
            return _Published(feed, totals=made)  # rendered from exactly these before
        redescribed = (before or "").partition(":")[0] != _describe(spec, zone)
        written: list[str] = []
        errors: list[str] = []
        kept = _kept_pages(spec, before, zone, pages, output)
        jobs = _PageJobs.start(share, spec, range(kept + 1, pages + 1), pages)
        try:
            if not whole:
                (current,) = _filled(store, [current])
            page_of = _pages_of(store, feed, frozen, fresh)
            for group in self._render(spec, current, pages, page_of, ()):
                self._write(group, written, errors, output)
            for job in jobs.ours():  # all of them, but for those the workers started
                for group in self._render(spec, None, pages, page_of, jobs.numbers[job]):
                    self._write(group, jobs.written[job], jobs.errors[job], output)
            for job in jobs.theirs():  # waits for them; a job that failed is done here
                for group in self._render(spec, None, pages, page_of, jobs.numbers[job]):
                    self._write(group, jobs.written[job], jobs.errors[job], output)
            written += jobs.all_written()
            errors += jobs.all_errors()
        except Exception as exc:  # one feed that cannot be rendered must not stop the rest
            errors.append(f"feed {feed} cannot be rendered: {_reason(exc)}")
            return _Published(feed, made, None, redescribed, tuple(written), tuple(errors))
        return _Published(
            feed,
            made,
            None if errors else digest,
            redescribed,
            tuple(written),
            tuple(errors),
            any(name.startswith(feed + ".") for name in written),
        )

    def _take(
        self,
        done: _Published,
        store: Store,
        totals: dict[str, FeedTotals],
        unsaved: list[FeedTotals],
        written: list[str],
        errors: list[str],
        changed: list[str],
        digests: list[tuple[str, str]],
    ) -> bool:
        """A feed's publishing recorded: the archive pages it completed saved, its totals
        kept in ``unsaved`` to be saved where they changed, its digest kept for after the
        flush; whether the index is due."""
        if done.pages:  # in one transaction
            store.save_archived_pages(done.feed_id, done.pages, clock.now())
        if done.totals is not None and totals.get(done.feed_id) != done.totals:
            unsaved.append(done.totals)
            totals[done.feed_id] = done.totals
        written += done.written
        errors += done.errors
        if done.digest is not None:
            digests.append((done.feed_id, done.digest))
        if done.changed:
            changed.append(done.feed_id)
        return done.site_due or done.redescribed or done.totals is not None

    def _still_published(self, store: Store, spec: FeedSpec, zone: str, output: Output) -> bool:
        """Whether the feed's stored digest was made from this very description (its stories
        unchanged, as the caller knows) and its files are all in the output."""
        described, _, rest = (store.published_digest(spec.info.id) or "").partition(":")
        stories, _, pages = rest.rpartition(":")
        if described != _describe(spec, zone) or not stories or not pages.isdigit():
            return False  # described otherwise, or its stories changed since (stale_digest)
        names = _file_names(spec, int(pages))
        return all(output.exists(name) for name in names)

    def _site_current(self, output: Output) -> bool:
        """The index and the OPML file exist and are newer than the configuration."""
        try:
            made = self.config.path.stat().st_mtime
        except OSError:
            return False
        for name in (INDEX_NAME, OPML_NAME):
            modified = output.modified(name)
            if modified is None or modified.timestamp() < made:
                return False
        return True

    def _remove_gone(
        self, store: Store, specs: Sequence[FeedSpec], errors: list[str], output: Output
    ) -> None:
        """Delete the files of feeds that were published and are no longer configured; the
        store keeps their entries (until `civicfeed prune`), and the server answers 410."""
        configured = {spec.info.id for spec in specs}
        for feed_id in store.published_feeds():
            if feed_id in configured:
                continue
            try:
                output.remove_feed(feed_id)
            except WriteError as exc:
                errors.append(str(exc))
                continue
            store.mark_removed(feed_id, clock.now())

    def _stories(
        self, store: Store, spec: FeedSpec, known: FeedTotals | None = None
    ) -> tuple[list[Story], dict[str, str], bool]:
        """The feed's stories made of its entries without their text (``Store.entry_heads``:
        enough to merge, page and count them; ``_filled`` reads the rest of those rendered),
        the digest of every entry, by id, and whether the stories are whole instead (see
        ``_whole_heads``: all of them read in one read, where all of them are rendered)."""
        config = self.config
        heads = _whole_heads(store, spec, known)
        whole = heads is not None
        if heads is None:
            heads = store.entry_heads(spec.members)
        digests = {entry.id: digest for entry, digest, _ in heads}
        keys = {entry.id: key for entry, _, key in heads}
        entries = [entry for entry, _, _ in heads]
        del heads
        stories = merge_stories(entries, spec.members, config.tz, config.dedup_window, keys)
        return stories, digests, whole

    def _summarise(
        self,
        store: Store,
        spec: FeedSpec,
        stories: Sequence[Story],
        totals: dict[str, FeedTotals],
    ) -> bool:
        """Save the feed's totals where they changed; whether they did."""
        made = feed_totals(spec.info.id, stories)
        if totals.get(spec.info.id) == made:
            return False
        store.save_feed_totals(made)
        totals[spec.info.id] = made
        return True

    def _write_site(
        self,
        store: Store,
        specs: Sequence[FeedSpec],
        states: Mapping[str, SourceState],
        written: list[str],
        errors: list[str],
        output: Output,
    ) -> None:
        """The OPML file and the index from the totals in the store. Read again once they
        are written: when another process saved totals in between (and may have written its
        index before this one), they are written again, until what they show is current."""
        totals = store.feed_totals()
        for _ in range(_SITE_ROUNDS):
            self.summaries = site_summaries(specs, states, totals)
            site = []
            for name, render in ((OPML_NAME, self._opml), (INDEX_NAME, self._index)):
                try:
                    site.append((name, render(specs)))
                except Exception as exc:  # the feeds are written; say what is missing
                    errors.append(f"{name} cannot be rendered: {_reason(exc)}")
            self._write(site, written, errors, output)
            again = store.feed_totals()
            if again == totals:
                return
            totals = again

    def _render(
        self,
        spec: FeedSpec,
        current: Sequence[Story] | None,
        pages: int,
        page_of: Callable[[int], Sequence[Story]],
        numbers: Iterable[int],
    ) -> Iterator[list[tuple[str, bytes]]]:
        """The feed's files in groups, each written before the next is rendered (an
        aggregate's archive is not held in memory at once): the subscription documents
        (unless ``current`` is None), then the archive pages ``numbers`` of the feed's
        ``pages`` (``page_of`` their stories)."""
        info, zone = spec.info, self.config.tz
        if current is not None:
            head = Archive(None, pages)
            yield [
                (f"{info.id}.rss", render_rss(info, current, zone, head)),
                (f"{info.id}.atom", render_atom(info, current, zone, head)),
                (f"{info.id}.json", render_json(info, current, zone)),
                (f"{info.id}.html", render_preview(info, current, zone)),
            ]
        for number in numbers:
            place = Archive(number, pages)
            page = page_of(number)
            yield [
                (place.name(info.id, extension, number), render(info, page, zone, place))
                for extension, render in (("rss", render_rss), ("atom", render_atom))
            ]

    def _index(self, specs: Sequence[FeedSpec]) -> bytes:
        # aggregates first: they are what most people want
        ordered = [s for s in specs if s.info.aggregate] + [
            s for s in specs if not s.info.aggregate
        ]
        summaries = [self.summaries[s.info.id] for s in ordered if s.info.id in self.summaries]
        return render_index(
            self.config.title, summaries, self.config.tz, specs[0].info.url(OPML_NAME)
        )

    def _opml(self, specs: Sequence[FeedSpec]) -> bytes:
        summaries = [self.summaries.get(s.info.id) for s in specs]
        updated = max((s.updated for s in summaries if s and s.updated > EPOCH), default=None)
        listed = [
            spec.info
            for spec, summary in zip(specs, summaries, strict=True)
            if not (summary and summary.pending)
        ]
        return render_opml(self.config.title, listed, updated)

    def _write(
        self,
        files: Iterable[tuple[str, bytes]],
        written: list[str],
        errors: list[str],
        output: Output,
    ) -> list[str]:
        changed = []
        for name, data in files:
            try:
                if output.put(name, data):
                    written.append(name)
                    changed.append(name)
            except WriteError as exc:
                errors.append(str(exc))
        return changed


@dataclass(frozen=True)
class _Published:
    """What publishing one feed did, for the publish to record (see ``Publisher._take``)."""

    feed_id: str
    totals: FeedTotals | None = None  # its totals, where they changed
    digest: str | None = None  # to be saved once its files are flushed
    redescribed: bool = False  # its description changed since it was last published
    written: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    changed: bool = False  # its subscription documents changed
    site_due: bool = False  # waiting for its first fetch
    pages: tuple[tuple[int, tuple[Story, ...]], ...] = ()  # completed by a worker, to store


def _saver(store: Store, spec: FeedSpec) -> Callable[[Sequence[tuple[int, Sequence[Story]]]], None]:
    def save(pages: Sequence[tuple[int, Sequence[Story]]]) -> None:
        store.save_archived_pages(spec.info.id, pages, clock.now())  # one transaction

    return save


# Rendering the feeds of many sources (the first run) in the worker processes as well, one
# job per few feeds, while this process renders the aggregates: only into the output folder
# (the state database is written in one transaction, by this process), and only when there
# are enough feeds to pay for the jobs.
POOLED_FROM = 64  # feeds of single sources due at least
_PER_JOB = 16
_JOB_SECONDS = 600.0


@dataclass
class _Pooled:
    """Jobs of feeds given to the workers: ``results`` waits for them; the feeds of a job
    that failed (a worker that died, ran out of time or raised) go to ``failed``."""

    jobs: list[tuple[list[str], Future[list[_Published]]]] = field(default_factory=list)
    feeds: frozenset[str] = frozenset()
    failed: set[str] = field(default_factory=set)

    def results(self) -> Iterator[_Published]:
        for feed_ids, job in self.jobs:
            try:
                done = job.result()
            except Exception:  # rendered here instead; the job's own files are replaced
                self.failed.update(feed_ids)
                continue
            yield from done


def _poolable(output: Output) -> bool:
    """Whether the worker processes may render and write into ``output``."""
    return isinstance(output, FolderOutput) and (os.cpu_count() or 1) >= 2


def _pooled(
    config: Config,
    output: Output,
    due: Sequence[FeedSpec],
    totals: Mapping[str, FeedTotals],
    zone: str,
    share: _Share | None = None,
) -> _Pooled:
    """The feeds of single sources among ``due`` given to the workers, when that pays."""
    specs = [spec for spec in due if not spec.info.aggregate]
    if not _poolable(output) or len(specs) < POOLED_FROM:
        return _Pooled()
    from . import work  # the worker processes: only for a publish this large

    settings = (share or _Share(config)).settings()
    pooled = _Pooled(feeds=frozenset(spec.info.id for spec in specs))
    for start in range(0, len(specs), _PER_JOB):
        chunk = specs[start : start + _PER_JOB]
        feed_ids = [spec.info.id for spec in chunk]
        known = {feed: totals[feed] for feed in feed_ids if feed in totals}
        sent = [_portable(spec) for spec in chunk]
        try:
            job = work.schedule(
                _publish_in_worker, settings, sent, zone, known, seconds=_JOB_SECONDS
            )
        except Exception:  # no workers: this process renders them
            pooled.failed.update(feed_ids)
            continue
        pooled.jobs.append((feed_ids, job))
    return pooled


class _Share:
    """What the jobs of one publish share: the configuration pickled once (a worker
    unpickles it once, see ``_config_of``), the folder where the jobs of archive pages are
    claimed, and those jobs, waited for by ``close`` before that folder goes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.jobs: list[Future[Any]] = []
        self._settings: tuple[str, bytes] | None = None
        self._claims: str | None = None
        self._made = 0

    def settings(self) -> tuple[str, bytes]:
        if self._settings is None:
            pickled = pickle.dumps(self.config, pickle.HIGHEST_PROTOCOL)
            self._settings = (hashlib.sha256(pickled).hexdigest(), pickled)
        return self._settings

    def claim(self) -> str:
        """Where a job of archive pages is claimed (each job of the publish its own)."""
        if self._claims is None:
            self._claims = tempfile.mkdtemp(prefix="civicfeed-pages-")
        self._made += 1
        return os.path.join(self._claims, str(self._made))

    def close(self) -> None:
        for job in self.jobs:  # those taken here end at once, when a worker comes to them
            with contextlib.suppress(Exception):
                job.result()
        self.jobs = []
        if self._claims is not None:
            shutil.rmtree(self._claims, ignore_errors=True)
            self._claims = None


# The archive pages of a feed rendered and written in the worker processes as well: the
# aggregate of many sources renders hundreds of them on the first run, while the workers
# render the feeds of the sources. In jobs of a few pages, each read by its worker from the
# store (a page is stored before anything is rendered, and reading it there costs this
# process nothing, where pickling it would cost it half as much as rendering it), while this
# process renders the subscription documents and then every job no worker has started yet,
# the last first. A job is claimed once, by a worker or by this process: a folder made in
# the folder of claims of the publish.
POOLED_PAGES_FROM = 32  # archive pages of one feed to render at least
_PAGES_PER_JOB = 8


@dataclass
class _PageJobs:
    """The archive pages of a feed to render, in jobs (``numbers``), and the names written
    and errors met by each; ``futures``: the jobs given to the workers, by number, and
    ``claims`` where each of them is claimed."""

    numbers: list[list[int]]
    futures: dict[int, Future[tuple[list[str], list[str]] | None]] = field(default_factory=dict)
    claims: dict[int, str] = field(default_factory=dict)
    written: list[list[str]] = field(default_factory=list)
    errors: list[list[str]] = field(default_factory=list)

    @classmethod
    def start(
        cls, share: _Share | None, spec: FeedSpec, numbers: Iterable[int], pages: int
    ) -> _PageJobs:
        chosen = list(numbers)
        if share is None or len(chosen) < POOLED_PAGES_FROM:
            jobs = cls([chosen] if chosen else [])
        else:
            from . import work

            chunks = [
                chosen[start : start + _PAGES_PER_JOB]
                for start in range(0, len(chosen), _PAGES_PER_JOB)
            ]
            jobs = cls(chunks)
            pickled = pickle.dumps(_portable(spec), pickle.HIGHEST_PROTOCOL)
            sent = (hashlib.sha256(pickled).hexdigest(), pickled)
            for job, chunk in enumerate(chunks):
                claim = share.claim()
                try:
                    future = work.schedule(
                        _pages_in_worker,
                        share.settings(),
                        sent,
                        chunk,
                        pages,
                        claim,
                        seconds=_JOB_SECONDS,
                    )
                except Exception:  # no workers: this process renders the rest
                    break
                jobs.futures[job] = future
                jobs.claims[job] = claim
                share.jobs.append(future)
        jobs.written = [[] for _ in jobs.numbers]
        jobs.errors = [[] for _ in jobs.numbers]
        return jobs

    def ours(self) -> Iterator[int]:
        """The jobs for this process to render: those no worker has claimed, the last first
        (the workers take them first to last)."""
        for job in reversed(range(len(self.numbers))):
            if job not in self.futures or _claim(self.claims[job]):
                self.futures.pop(job, None)
                yield job

    def theirs(self) -> Iterator[int]:
        """Waits for the jobs the workers claimed; yields those that failed, to be
        rendered here (their files are replaced)."""
        for job, future in sorted(self.futures.items()):
            try:
                done = future.result()
            except Exception:
                done = None
            if done is None:
                yield job
            else:
                self.written[job], self.errors[job] = done

    def all_written(self) -> list[str]:
        return [name for names in self.written for name in names]

    def all_errors(self) -> list[str]:
        return [error for errors in self.errors for error in errors]


def _claim(path: str) -> bool:
    """Whether this process is the one to render a job of archive pages (see ``_PageJobs``):
    the first to make its folder, while the publish that made the jobs has not ended."""
    try:
        os.mkdir(path)
    except OSError:  # claimed before, or the publish is over
        return False
    return True


def _pages_in_worker(
    settings: tuple[str, bytes],
    sent: tuple[str, bytes],
    numbers: Sequence[int],
    pages: int,
    claim: str,
) -> tuple[list[str], list[str]] | None:
    """A job of ``_PageJobs``, in a worker process, if it is the first to ``claim`` it (None
    if not): the archive pages ``numbers`` of the feed of ``sent`` (the digest and pickle of
    its ``_portable`` spec), of its ``pages``, read from the store opened read-only, rendered
    and written into the output folder, flushed (the folders too) before the job returns the
    names written and the errors met."""
    if not _claim(claim):
        return None
    config = _config_of(settings)
    spec = _spec_of(sent)
    store = open_store(config.state, read_only=True)
    try:
        publisher = Publisher(config)
        output = FolderOutput(config.output)
        page_of = _pages_of(store, spec.info.id, pages, ())
        written: list[str] = []
        errors: list[str] = []
        for group in publisher._render(spec, None, pages, page_of, numbers):
            publisher._write(group, written, errors, output)
        output.flush()
        return written, errors
    finally:
        store.close()


def _spec_of(sent: tuple[str, bytes]) -> FeedSpec:
    """The spec of the feed whose archive pages a job renders (``_portable``, by digest)."""
    return _received(sent, FeedSpec, _settled)


def _portable(spec: FeedSpec) -> FeedSpec:
    """The spec as it can be pickled (its sources in a dict); ``_settled`` makes it whole."""
    return replace(spec, info=replace(spec.info, sources=dict(spec.info.sources)))


def _settled(spec: FeedSpec) -> FeedSpec:
    """A spec from ``_portable`` as ``feed_specs`` makes it (its description is the same)."""
    return replace(spec, info=replace(spec.info, sources=MappingProxyType(spec.info.sources)))


def _config_of(settings: tuple[str, bytes]) -> Config:
    """The configuration of the publish a job is part of (by digest)."""
    return _received(settings, Config, lambda config: config)


# in a worker: the last object of each kind it was sent (the configuration of a publish, the
# spec of a feed), with the digest of its pickle, so that each is unpickled once, not per job
_received_last: dict[type, tuple[str, object]] = {}
_Sent = TypeVar("_Sent")


def _received(
    sent: tuple[str, bytes], kind: type[_Sent], settle: Callable[[_Sent], _Sent]
) -> _Sent:
    """``sent`` (a digest and a pickle of a ``kind``) unpickled and ``settle``d, or the object
    made from the same digest before."""
    digest, pickled = sent
    known = _received_last.get(kind)
    if known is None or known[0] != digest:
        value = pickle.loads(pickled)
        assert isinstance(value, kind)
        known = _received_last[kind] = (digest, settle(value))
    made = known[1]
    assert isinstance(made, kind)
    return made


def _publish_in_worker(
    settings: tuple[str, bytes],
    specs: Sequence[FeedSpec],
    zone: str,
    totals: Mapping[str, FeedTotals],
) -> list[_Published]:
    """A job of ``_pooled``, in a worker process: the feeds of ``specs`` (``_portable``)
    rendered and written into the output folder (each file flushed, and the folders, before
    the job returns), from the store opened read-only; the archive pages they completed come
    back to be stored. ``settings``: the digest and the pickle of the configuration."""
    config = _config_of(settings)
    store = open_store(config.state, read_only=True)
    try:
        publisher = Publisher(config)
        output = FolderOutput(config.output)
        results = []
        for sent in specs:
            spec = _settled(sent)
            pages: list[tuple[int, tuple[Story, ...]]] = []
            done = publisher._publish_feed(store, spec, zone, output, totals, _collector(pages))
            results.append(replace(done, pages=tuple(pages)))
        output.flush()
        return results
    finally:
        store.close()


def _collector(
    pages: list[tuple[int, tuple[Story, ...]]],
) -> Callable[[Sequence[tuple[int, Sequence[Story]]]], None]:
    def keep(completed: Sequence[tuple[int, Sequence[Story]]]) -> None:
        pages.extend((number, tuple(page)) for number, page in completed)

    return keep


def _zone(config: Config) -> str:
    """What of the configuration, beside a feed's description, its files depend on."""
    return f"{config.timezone}|{config.dedup_window}"


# how often the index is rendered again at most when other processes keep changing totals
# (each of them renders it after its own change)
_SITE_ROUNDS = 3


# a story's (published, id), read in C
_published_and_id = attrgetter("entry.published", "id")


def feed_totals(feed_id: str, stories: Sequence[Story]) -> FeedTotals:
    """What the index says of a feed with these stories."""
    newest = max(stories, key=_published_and_id, default=None)
    shown = None if newest is None else replace(newest.entry, summary="", content="")
    return FeedTotals(feed_id, len(stories), feed_updated(stories), shown)


def site_summaries(
    specs: Sequence[FeedSpec],
    states: Mapping[str, SourceState],
    totals: Mapping[str, FeedTotals],
) -> dict[str, FeedSummary]:
    """What the index and the OPML file show of each feed: its stored totals; a feed of one
    source that has none (or no stories) and was never fetched is waiting, with the reason;
    a feed with neither is not shown yet."""
    shown = {}
    for spec in specs:
        feed = spec.info.id
        known = totals.get(feed)
        first = spec.members[0]
        state = None if spec.info.aggregate else states.get(first, SourceState(first))
        if state is not None and state.last_success is None and not (known and known.count):
            shown[feed] = FeedSummary(
                spec.info, 0, None, EPOCH, state.last_error or "noch kein Abruf"
            )
        elif known is not None:
            shown[feed] = FeedSummary(spec.info, known.count, known.newest, known.updated)
    return shown


@contextlib.contextmanager
def _uncollected() -> Iterator[None]:
    """The cyclic garbage collector paused while a feed's stories are made: an aggregate of
    1,000 sources makes some 100,000 objects at once, none of them part of a cycle (freed
    as usual, by their count of references), and every collection they would set off walks
    all of them again (a third of the time of making them). Left as it is where it was off
    already."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _whole_heads(
    store: Store, spec: FeedSpec, known: FeedTotals | None
) -> list[tuple[Entry, str, str]] | None:
    """The entries of a feed of one source read whole (``Store.whole_entries``), when it
    has at most ``max_entries`` of them: then its subscription document renders every one
    of its stories (a source's stories are its entries). None for any other feed, or when
    its totals ``known`` (as last published) count more stories already."""
    if spec.info.aggregate or len(spec.members) != 1:
        return None
    if known is not None and known.count > spec.max_entries:
        return None
    return store.whole_entries(spec.members, spec.max_entries)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _never_fetched(store: Store, spec: FeedSpec) -> str | None:
    """Why a source's feed has nothing yet, if it was never fetched successfully."""
    state = store.source_state(spec.members[0])
    if state.last_success is not None:
        return None
    return state.last_error or "noch kein Abruf"


def _pages_of(
    store: Store, feed_id: str, frozen: int, fresh: Sequence[Sequence[Story]]
) -> Callable[[int], Sequence[Story]]:
    """The stories of archive page ``number``: one of the ``frozen`` pages stored before,
    read from the store when it is rendered, or one of the ``fresh`` ones after them."""

    def page_of(number: int) -> Sequence[Story]:
        if number > frozen:
            return fresh[number - frozen - 1]
        page = store.archived_page(feed_id, number)
        if page is None:
            raise WriteError(f"archive page {number} of {feed_id} is no longer stored")
        return page

    return page_of


def _kept_pages(spec: FeedSpec, before: str | None, zone: str, pages: int, output: Output) -> int:
    """How many of the feed's archive pages are in the output as they would be rendered now,
    so that they need not be rendered again: a complete page never changes (its stories are
    frozen) except for its next-archive link, which the last page gets when a page completes
    after it. So with the feed's description unchanged since its last digest, which counted
    ``last`` pages, pages 1 … last-1 stay, and page ``last`` too while no page completed;
    each only while both its files are there."""
    described, _, rest = (before or "").partition(":")
    counted = rest.rpartition(":")[2]
    if described != _describe(spec, zone) or not counted.isdigit():
        return 0
    last = int(counted)
    stay = min(last if pages == last else last - 1, pages)
    for number in range(1, stay + 1):
        if not all(
            output.exists(f"archive/{spec.info.id}/{number}.{ext}") for ext in ("rss", "atom")
        ):
            return number - 1
    return max(stay, 0)


def _file_names(spec: FeedSpec, pages: int) -> list[str]:
    feed = spec.info.id
    names = [f"{feed}.{ext}" for ext in ("rss", "atom", "json", "html")]
    names += [f"archive/{feed}/{n}.{ext}" for n in range(1, pages + 1) for ext in ("rss", "atom")]
    return names


def _digest(
    spec: FeedSpec, stories: Sequence[Story], zone: str, pages: int, digests: Mapping[str, str]
) -> str:
    """Everything a feed's files are rendered from; equal digests, equal files. In three
    parts: the feed's description, its stories, and its number of archive pages. A story
    counts by its id and the digests of its copies in their order (``digests``: of each
    entry, by id, see ``Store.entry_heads``), which change whenever any of their fields or
    articles do."""
    made = [
        (story.id, digests[story.entry.id], *(digests[copy.id] for copy in story.origins))
        if story.origins
        else (story.id, digests[story.entry.id])
        for story in stories
    ]
    stories_digest = hashlib.sha256(marshal.dumps(made, _MARSHAL)).hexdigest()
    return f"{_describe(spec, zone)}:{stories_digest}:{pages}"


# marshal's format 2: the same bytes for the same values (formats 3 and 4 mark the objects
# referenced more than once, so that the bytes depend on what else holds them)
_MARSHAL = 2


_FILLED_PAGES = 5  # fresh archive pages read whole at once


def _filled(store: Store, groups: Sequence[Sequence[Story]]) -> list[list[Story]]:
    """Groups of stories made of entries without their text (``Publisher._stories``) with
    every copy read whole from the store, in one read for all groups."""
    ids = [copy.id for group in groups for story in group for copy in (story.entry, *story.origins)]
    whole = {entry.id: entry for entry in store.entries_by_id(ids)}
    missing = [entry_id for entry_id in ids if entry_id not in whole]
    if missing:  # deleted since its stories were read (the source left the configuration)
        raise WriteError(f"entry {missing[0]} is no longer stored")
    return [
        [
            Story(
                story.id,
                whole[story.entry.id],
                tuple(whole[copy.id] for copy in story.origins),
                story.updated,
            )
            for story in group
        ]
        for group in groups
    ]


def _describe(spec: FeedSpec, zone: str) -> str:
    """The part of a feed's digest that comes from the configuration and this release."""
    return hashlib.sha256(f"{__version__}|{zone}|{spec!r}".encode()).hexdigest()


def feeds_of(config: Config) -> dict[str, tuple[str, ...]]:
    """For each source, the feeds it is part of: its own, and the aggregates that take it."""
    found: dict[str, list[str]] = {source.id: [source.id] for source in config.sources}
    for aggregate in config.feeds:
        for member in config.members(aggregate):
            found[member.id].append(aggregate.id)
    return {source_id: tuple(feeds) for source_id, feeds in found.items()}


def stale_digest(store: Store, feed_ids: Iterable[str]) -> None:
    """Forget the stories' part of the digests of feeds whose stories are about to change:
    until they are published again, ``publish(untouched=...)`` reads them in full (a kill in
    between leaves no feed believed current). The description and the number of archive
    pages stay, so that the complete pages written before are not rendered again."""
    for feed_id in feed_ids:
        digest = store.published_digest(feed_id)
        if digest:
            described, _, rest = digest.partition(":")
            stories, _, pages = rest.rpartition(":")
            if stories:  # that part goes; the rest says which archive pages are written
                store.save_published_digest(feed_id, f"{described}::{pages}")


# --- what the renderers are told about each feed ---------------------------------------------


def _url(config: Config, name: str) -> str | None:
    return f"{config.base_url}{name}" if config.base_url else None


def _source_ref(config: Config, source: Source, declared: SourceState | None) -> SourceRef:
    title = source_title(source, declared)
    info = FeedInfo(
        id=source.id,
        title=title,
        description="",
        home=source.home or source.url,
        base_url=config.base_url,
    )
    return SourceRef(
        id=source.id,
        title=title,
        page=source.home or source.url,
        atom_id=info.atom_id,
        atom_url=_url(config, f"{source.id}.atom"),
        rss_url=_url(config, f"{source.id}.rss"),
    )


def _source_info(
    config: Config, source: Source, refs: dict[str, SourceRef], declared: SourceState | None
) -> FeedInfo:
    title = refs[source.id].title
    return FeedInfo(
        id=source.id,
        title=title,
        description=source.description or f"Meldungen: {title}",
        home=source.home or source.url,
        base_url=config.base_url,
        language=source_language(config, source, declared),
        sources=MappingProxyType({source.id: refs[source.id]}),
        hub=config.websub_hub,
    )


def _aggregate_info(
    config: Config, aggregate: Aggregate, members: Sequence[Source], refs: dict[str, SourceRef]
) -> FeedInfo:
    names = ", ".join(refs[m.id].title for m in members)
    return FeedInfo(
        id=aggregate.id,
        title=aggregate.title,
        description=aggregate.description or f"Meldungen aus: {names}",
        home=config.base_url or (members[0].home or members[0].url),
        base_url=config.base_url,
        language=aggregate.language or config.language,
        sources=MappingProxyType({m.id: refs[m.id] for m in members}),
        aggregate=True,
        hub=config.websub_hub,
    )
