"""Render and write: every feed of the configuration, in every format, plus the index.

For each feed (one per source, one per aggregate) the stories are taken from the store and
written as RSS, Atom, JSON Feed and a readable HTML page; older stories beyond max_entries go
to RFC 5005 archive pages. Files are replaced only when their bytes change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from urllib.parse import urlsplit

from . import __version__, clock
from .config import Aggregate, Config, Source
from .dedup import Story, merge_stories
from .errors import WriteError
from .models import SourceState
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
from .store import Store
from .write import Output, open_output

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
    sequence = sorted(stories, key=lambda s: (_first_seen(s), s.published, s.id))
    archived = {story.id for page in frozen for story in page}
    rest = [story for story in sequence if story.id not in archived]
    pages = [rest[start : start + size] for start in range(0, len(rest) - size + 1, size)]
    current = sorted(sequence[-size:], key=_newest_first)
    return current, [list(page) for page in frozen] + [
        sorted(page, key=_newest_first) for page in pages if len(page) == size
    ]


def _first_seen(story: Story) -> object:
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
        disk, is left alone without reading its entries; the index and the OPML file are
        rendered only when a feed was rendered or is waiting for its first fetch.

        ``feeds``: only these feeds are rendered (the workers publish one feed per job);
        ``site``: whether the index, the OPML file and the stylesheet are written at all. With
        ``feeds`` given and ``site``, every other feed is summarised from the store for the
        index, which is then always rendered.
        """
        config = self.config
        chosen = None if affected is None else set(affected)
        quiet = set(untouched)
        written: list[str] = []
        errors: list[str] = []
        changed: list[str] = []
        output = open_output(config, store)  # flushed once, before any digest is saved
        digests: list[tuple[str, str]] = []
        output.begin()
        specs = feed_specs(config, store.source_states())  # one read, not one per source
        zone = f"{config.timezone}|{config.dedup_window}"
        deferred: list[FeedSpec] = []  # left alone unread; summarised only if the index needs it
        site_due = not quiet or feeds is not None
        only = None if feeds is None else set(feeds)
        for spec in specs:
            if only is not None and spec.info.id not in only:
                if site:
                    deferred.append(spec)
                continue
            if (
                chosen is not None
                and spec.info.id in self.summaries
                and not chosen.intersection(spec.members)
            ):
                continue
            if quiet.issuperset(spec.members) and self._still_published(store, spec, zone, output):
                deferred.append(spec)
                continue
            stories = merge_stories(
                store.entries(spec.members), spec.members, config.tz, config.dedup_window
            )
            pending = None if stories or spec.info.aggregate else _never_fetched(store, spec)
            if pending is not None:  # no file until there is something true to say
                self.summaries[spec.info.id] = FeedSummary(spec.info, 0, None, EPOCH, pending)
                site_due = True
                continue
            frozen = store.archived_pages(spec.info.id)
            current, pages = page_stories(stories, spec.max_entries, frozen)
            for number, page in enumerate(pages[len(frozen) :], start=len(frozen) + 1):
                # complete: its stories and their order never change again
                store.save_archived_page(spec.info.id, number, page, clock.now())
            self._summarise(spec, stories)
            if not stories:  # dated when first written, not 1970
                now = clock.now()
                spec = replace(spec, info=replace(spec.info, empty_since=now))
            digest = _digest(spec, stories, zone, len(pages))
            if digest == store.published_digest(spec.info.id) and all(
                output.exists(name) for name in _file_names(spec, len(pages))
            ):
                continue  # rendered from exactly these stories before, and still there
            site_due = True
            failures = len(errors)
            try:
                files = self._render(spec, current, pages)
            except Exception as exc:  # one feed that cannot be rendered must not stop the rest
                errors.append(f"feed {spec.info.id} cannot be rendered: {_reason(exc)}")
                continue
            feed_changed = self._write(files, written, errors, output)
            if len(errors) == failures:
                digests.append((spec.info.id, digest))
            if any(name.startswith(spec.info.id + ".") for name in feed_changed):
                changed.append(spec.info.id)
        site_files: list[tuple[str, bytes]] = [(STYLESHEET_NAME, stylesheet())] if site else []
        if site and (site_due or not self._site_current(output)):
            for spec in deferred:  # the index lists every feed
                stories = merge_stories(
                    store.entries(spec.members), spec.members, config.tz, config.dedup_window
                )
                pending = None if stories or spec.info.aggregate else _never_fetched(store, spec)
                if pending is not None:
                    self.summaries[spec.info.id] = FeedSummary(spec.info, 0, None, EPOCH, pending)
                else:
                    self._summarise(spec, stories)
            for name, render in ((OPML_NAME, self._opml), (INDEX_NAME, self._index)):
                try:
                    site_files.append((name, render(specs)))
                except Exception as exc:  # the feeds are written; say what is missing
                    errors.append(f"{name} cannot be rendered: {_reason(exc)}")
        self._write(site_files, written, errors, output)
        try:
            output.flush()  # the files are there for good before the store says they are done
        except WriteError as exc:
            errors.append(str(exc))
            digests = []
        for feed_id, digest in digests:
            store.save_published_digest(feed_id, digest)
        if affected is None and site:
            self._remove_gone(store, specs, errors, output)
        return PublishReport(tuple(written), tuple(errors), tuple(changed))

    def _still_published(self, store: Store, spec: FeedSpec, zone: str, output: Output) -> bool:
        """Whether the feed's stored digest was made from this very description (its stories
        unchanged, as the caller knows) and its files are all in the output."""
        described, _, rest = (store.published_digest(spec.info.id) or "").partition(":")
        pages = rest.rpartition(":")[2]
        if described != _describe(spec, zone) or not pages.isdigit():
            return False
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

    def _summarise(self, spec: FeedSpec, stories: Sequence[Story]) -> None:
        newest = max(stories, key=lambda s: (s.published, s.id), default=None)
        self.summaries[spec.info.id] = FeedSummary(
            spec.info, len(stories), newest, feed_updated(stories)
        )

    def _render(
        self, spec: FeedSpec, current: Sequence[Story], pages: Sequence[Sequence[Story]]
    ) -> list[tuple[str, bytes]]:
        info, zone = spec.info, self.config.tz
        head = Archive(None, len(pages))
        files = [
            (f"{info.id}.rss", render_rss(info, current, zone, head)),
            (f"{info.id}.atom", render_atom(info, current, zone, head)),
            (f"{info.id}.json", render_json(info, current, zone)),
            (f"{info.id}.html", render_preview(info, current, zone)),
        ]
        for number, page in enumerate(pages, start=1):
            place = Archive(number, len(pages))
            for extension, render in (("rss", render_rss), ("atom", render_atom)):
                files.append(
                    (place.name(info.id, extension, number), render(info, page, zone, place))
                )
        return files

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


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _never_fetched(store: Store, spec: FeedSpec) -> str | None:
    """Why a source's feed has nothing yet, if it was never fetched successfully."""
    state = store.source_state(spec.members[0])
    if state.last_success is not None:
        return None
    return state.last_error or "noch kein Abruf"


def _file_names(spec: FeedSpec, pages: int) -> list[str]:
    feed = spec.info.id
    names = [f"{feed}.{ext}" for ext in ("rss", "atom", "json", "html")]
    names += [f"archive/{feed}/{n}.{ext}" for n in range(1, pages + 1) for ext in ("rss", "atom")]
    return names


def _digest(spec: FeedSpec, stories: Sequence[Story], zone: str, pages: int) -> str:
    """Everything a feed's files are rendered from; equal digests, equal files. In three
    parts: the feed's description, its stories, and its number of archive pages."""
    hasher = hashlib.sha256()
    for story in stories:
        for copy in (story.entry, *story.origins):
            hasher.update(repr(copy).encode())
        hasher.update(story.id.encode())
    return f"{_describe(spec, zone)}:{hasher.hexdigest()}:{pages}"


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
    """Forget the digests of feeds whose stories are about to change: until they are
    published again, ``publish(untouched=...)`` reads them in full (a kill in between
    leaves no feed believed current)."""
    for feed_id in feed_ids:
        if store.published_digest(feed_id):
            store.save_published_digest(feed_id, "")


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
