"""The pipeline: fetch -> extract -> normalise -> deduplicate -> store -> render -> write.

A source's failure is data in its result, never an abort: its stored entries stay as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, closing, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit
from uuid import uuid4

from . import clock
from .clock import for_people
from .config import Config, Source, json_fields
from .errors import CivicfeedError, ExtractError, FetchError
from .fetch import Fetcher, HostSlots, user_agent
from .health import health, is_due, next_attempt
from .models import (
    Candidate,
    DetailPage,
    Entry,
    Explained,
    Extraction,
    Fetched,
    Normalised,
    Pinned,
    SourceState,
    Validators,
)
from .store import Store, open_store

# Imported where they are used: the normaliser (dates, sanitising), deduplication and the
# worker processes (work.py, pebble) only when a document or a detail page is read,
# publishing once the sources are done; so that the requests go out sooner, and a refresh
# answered by 304s never loads them.
if TYPE_CHECKING:
    from .dedup import SourcePlan
    from .publish import Publisher

__all__ = [
    "RefreshReport",
    "SourceResult",
    "inspect_source",
    "refresh",
    "source_status",
]

log = logging.getLogger("civicfeed")

Outcome = Literal["new", "updated", "unchanged", "not-modified", "failed", "skipped"]
# detail pages fetched at most per source and run, to find dates the listing lacks
MAX_DETAIL_FETCHES = 25


@dataclass(frozen=True)
class SourceResult:
    source_id: str
    outcome: Outcome
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    items: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    error_kind: str | None = None  # for monitoring: dns, connect, timeout, http, extract, ...

    @property
    def ok(self) -> bool:
        return self.outcome not in ("failed", "skipped")

    def describe(self) -> str:
        """One line for people: the source, what happened, how long it took."""
        if self.outcome == "failed":
            detail = f"failed: {self.error}"
        elif self.outcome == "skipped":
            detail = f"failing, not tried now: {self.error}"
        elif self.outcome == "not-modified":
            detail = "unchanged (304 not modified)"
        else:
            detail = f"{self.outcome}: {self.new} new, {self.updated} updated, {self.items} items"
        return f"{self.source_id:<24} {detail}  [{self.seconds:.1f}s]"


@dataclass(frozen=True)
class RefreshReport:
    results: tuple[SourceResult, ...]
    written: tuple[str, ...] = ()  # names of the files changed, relative to the output
    write_errors: tuple[str, ...] = ()
    changed_feeds: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[SourceResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.write_errors


@dataclass(frozen=True)
class Inspection:
    """What ``check`` shows: the candidates a fetch would produce, nothing stored."""

    source_id: str
    candidates: tuple[Candidate, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None
    url: str = ""  # the address read, after redirects
    kind: str = "feed"
    listing: Explained | None = None  # for an HTML listing: the selectors it is read with


@dataclass
class _Run:
    config: Config
    fetcher: Fetcher
    now: datetime
    store: Store | None = None
    on_result: Callable[[SourceResult], None] | None = None
    results: list[SourceResult] = field(default_factory=list)
    reparse: bool = False  # every source fetched unconditionally and read again
    # whether the feeds a changed source is in are marked stale (see publish.feeds_of); the
    # map of them is made when a source first changed
    track_feeds: bool = False
    feeds: Mapping[str, tuple[str, ...]] | None = None
    stale: set[str] = field(default_factory=set)  # feeds whose stories changed in this run
    exclusive: bool = True  # no other process refreshes this state (see refresh)
    # who holds the sources' leases: this process, this run
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid4()}")
    calls: _StoreCalls = field(init=False)  # how the sources' store calls go to a thread

    def __post_init__(self) -> None:
        self.calls = _StoreCalls(together=self.store is not None and self.store.serialised)


T = TypeVar("T")


class _StoreCalls:
    """The store calls of a run's sources, made in a thread (never on the event loop).

    For a store that makes one call at a time anyway (``serialised``: SQLite, one
    connection), the calls waiting at a moment go to one thread together, which makes them
    one after another, as they came, and hands the results back at once: a refresh answered
    by 304s made two hand-overs to a thread per source (the lease with the source's state,
    then the save with the lease given back), and those cost more than the calls. Each call
    is the same as alone (its own transaction, its own result or exception for its caller
    only); a caller that is cancelled meanwhile leaves its call to be made, as with
    ``asyncio.to_thread``. Other stores (PostgreSQL: a pool of connections) get each call
    in a thread of its own, so that they run side by side."""

    def __init__(self, *, together: bool) -> None:
        self._together = together
        self._lock = threading.Lock()
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._busy = False  # a thread is making the waiting calls

    async def __call__(self, function: Callable[..., T], *args: Any) -> T:
        if not self._together:
            return await asyncio.to_thread(function, *args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._waiting.append((lambda: function(*args), future))
            start, self._busy = not self._busy, True
        if start:
            loop.run_in_executor(None, self._work, loop)
        return await future

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a thread: the waiting calls, until none are left."""
        while True:
            with self._lock:
                calls, self._waiting = self._waiting, []
                if not calls:
                    self._busy = False
                    return
            done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            for call, future in calls:
                try:
                    done.append((future, call(), None))
                except BaseException as exc:  # the caller's to handle, as if it made the call
                    done.append((future, None, exc))
                if len(done) == _HANDED_BACK:  # the first callers go on without the last
                    self._hand_back(loop, done)
                    done = []
            self._hand_back(loop, done)

    @staticmethod
    def _hand_back(
        loop: asyncio.AbstractEventLoop,
        done: list[tuple[asyncio.Future[Any], Any, BaseException | None]],
    ) -> None:
        if done:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, done)


# results handed back to the event loop together at most (a run's first claims are a
# thousand: its first request must not wait for the last of them)
_HANDED_BACK = 8


def _settle(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in done:
        if future.done():  # its caller was cancelled
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


# a source's lease outlasts its time (timeout) by this many seconds
LEASE_MARGIN = 60.0
_EVERY_LEASE_EXPIRED = datetime.max.replace(tzinfo=UTC)


# --- whole runs -----------------------------------------------------------------------------


async def refresh(
    config: Config,
    *,
    only: Sequence[str] = (),
    now: datetime | None = None,
    force: bool = False,
    reparse: bool = False,
    on_result: Callable[[SourceResult], None] | None = None,
    store: Store | None = None,
    fetcher: Fetcher | None = None,
    publisher: Publisher | None = None,
    exclusive: bool = True,
) -> RefreshReport:
    """Refresh the sources (all, or ``only`` these ids), then write every feed that changed.

    A source that keeps failing is skipped until its next attempt is due (see health.py),
    unless ``force`` is set. A source whose extraction settings changed since its last
    success, or every source with ``reparse``, is fetched unconditionally and read again.
    A long-running caller passes its own store, fetcher and publisher;
    the publisher then renders only the feeds that include the refreshed sources.
    ``exclusive``: the caller holds the state's lock (lock.py), so no other process refreshes
    this state and the sources' leases a killed run left behind are taken over at once;
    otherwise a source whose lease another process holds is left to it.
    """
    own_store = store is None
    store = store or open_store(config.state)
    started = time.monotonic()
    try:
        async with AsyncExitStack() as stack:
            # a fetcher passed in is shared: it stays open for its owner
            client = (
                fetcher
                if fetcher is not None
                else await stack.enter_async_context(fetcher_for(config))
            )
            moment = now or clock.now()
            run = _Run(
                config,
                client,
                moment,
                store,
                on_result,
                reparse=reparse,
                exclusive=exclusive,
                track_feeds=True,
            )
            chosen = [s for s in config.sources if not only or s.id in only]
            # committed, whole, before anything is published; alone on the state only
            with store.grouped() if exclusive else nullcontext():
                await asyncio.gather(*(_refresh_one(run, source, force=force) for source in chosen))
            touched = {s.id for s in config.sources if s.id in run.stale}  # entries changed
            from .publish import Publisher

            published = (publisher or Publisher(config)).publish(
                store,
                affected=None if publisher is None else [s.id for s in chosen],
                untouched=[s.id for s in config.sources if s.id not in touched],
            )
            hub_errors = await notify_hub(config, client, published.changed_feeds)
        kinds = Counter(r.error_kind or "other" for r in run.results if r.outcome == "failed")
        await asyncio.to_thread(store.save_refresh, clock.now(), time.monotonic() - started, kinds)
        order = {source.id: i for i, source in enumerate(config.sources)}
        results = sorted(run.results, key=lambda r: order[r.source_id])
        return RefreshReport(
            tuple(results),
            published.written,
            published.errors + hub_errors,
            published.changed_feeds,
        )
    finally:
        if own_store:
            store.close()


async def notify_hub(config: Config, client: Fetcher, feeds: Sequence[str]) -> tuple[str, ...]:
    """The third unit of work (after refresh_source and Publisher.publish): ping the WebSub
    hub for every changed feed; a failure is reported, not fatal."""
    if not config.websub_hub or not config.base_url or not feeds:
        return ()
    topics = [f"{config.base_url}{feed}.{ext}" for feed in feeds for ext in ("rss", "atom", "json")]
    try:
        await client.notify_hub(config.websub_hub, topics)
    except FetchError as exc:
        return (str(exc),)
    return ()


async def inspect_source(
    config: Config,
    source: Source,
    *,
    fetched: Fetched | None = None,
    extraction: Extraction | None = None,
    pinned: Pinned | None = None,
) -> Inspection:
    """Fetch and extract one source as a refresh would, storing and writing nothing.

    ``fetched``: the source's document when the caller has just fetched it; ``extraction``:
    what extract(fetched, source) gave, when the caller has just read it (it is not parsed
    again); ``pinned``: what pin_listing found on the page, when the caller has pinned it.
    """
    async with fetcher_for(config) as client:
        run = _Run(config, client, clock.now())
        shown = Inspection(source.id, url=source.url, kind=source.kind)
        try:
            if fetched is None:
                fetched = await client.fetch(
                    source.url, timeout=source.timeout, max_bytes=source.max_bytes
                )
            deadline = _source_deadline(source, fetched)
            from .extract.pin import explain

            listing = explain(fetched, source.html, pinned) if source.html is not None else None
            shown = replace(shown, url=fetched.url, listing=listing)
            if extraction is None:
                normalised = await _read(run, fetched, source, deadline)
            else:
                normalised = normalised_of(
                    extraction, fetched, source, config.tz, config.date_order_of(source)
                )
            candidates, warnings, _ = await _candidates(
                run, source, normalised, fetched.url, set(), deadline
            )
        except CivicfeedError as exc:
            return replace(shown, error=str(exc))
    return replace(shown, candidates=tuple(candidates), warnings=tuple(warnings))


def fetcher_for(config: Config, host_slots: HostSlots | None = None) -> Fetcher:
    """The fetcher of a configuration: its limits, its User-Agent, the hosts it trusts;
    ``host_slots``: the per-host limit shared with other processes (workers.py)."""
    return Fetcher(
        concurrency=config.concurrency,
        per_host=config.per_host,
        agent=user_agent(config.base_url),
        trusted=config.trusted_hosts,
        host_slots=host_slots,
    )


# --- one source -----------------------------------------------------------------------------


async def refresh_source(
    config: Config,
    source: Source,
    *,
    store: Store,
    fetcher: Fetcher,
    now: datetime,
    force: bool = False,
    exclusive: bool = True,
    holder: str | None = None,
) -> SourceResult:
    """One unit of work: take the source's lease, fetch it, extract, plan against its stored
    entries and save the plan in one store transaction, give the lease back. Publishing the
    feeds it is part of is the caller's next step (Publisher.publish), the hub ping the one
    after (notify_hub). Every failure is the result's, never raised.

    ``holder``: the name the lease is taken under (default: this call's own); a caller whose
    queue runs one job per source at a time names the source's job, so that a job taking over
    from a killed one takes over its lease at once."""
    run = _Run(config, fetcher, now, store, exclusive=exclusive)
    if holder is not None:
        run.holder = holder
    return await _one(run, source, force=force)


async def _refresh_one(run: _Run, source: Source, *, force: bool) -> None:
    result = await _one(run, source, force=force)
    run.results.append(result)
    if run.on_result:
        run.on_result(result)


async def _one(run: _Run, source: Source, *, force: bool) -> SourceResult:
    started = time.monotonic()
    try:
        assert run.store is not None
        # the source's lease: of the processes sharing a state, one refreshes it at a time (it
        # reads the stored entries, plans against them and saves); a holder that dies keeps it
        # only until it expires
        lease = _Lease(f"source:{source.id}")
        state = await run.calls(_claim, run, source, lease.name)
        if state is None:
            result = SourceResult(
                source.id, "unchanged", warnings=("being refreshed by another process: left to it",)
            )
        else:
            try:
                if not force and not is_due(state, source.every, run.now):
                    result = _held_back(source, state, run.config.tz)
                else:
                    result = await _fetch_and_store(run, source, state, lease)
            finally:
                if lease.held:
                    await run.calls(_release, run, lease)
    except CivicfeedError as exc:
        result = await _failed(run, source, str(exc), exc.kind)
    except Exception as exc:  # a bug must not take the other sources down with it
        log.exception("internal error while refreshing %s", source.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        result = await _failed(run, source, reason, "internal")
    return replace(result, seconds=time.monotonic() - started)


@dataclass
class _Lease:
    """A source's lease while its refresh holds it; released once (see _release)."""

    name: str
    held: bool = True


def _release(run: _Run, lease: _Lease) -> None:
    """Give the lease back; a failure leaves it to expire."""
    assert run.store is not None
    lease.held = False
    with contextlib.suppress(CivicfeedError):  # else it expires
        run.store.release(lease.name, run.holder)


def _claim(run: _Run, source: Source, lease: str) -> SourceState | None:
    """The source's lease taken and its state read (one hand-over to a thread, not two);
    None when another process holds the lease."""
    assert run.store is not None
    claimed = run.store.claim(
        lease,
        run.holder,
        until=datetime.now(UTC) + timedelta(seconds=source.timeout + LEASE_MARGIN),
        # holding the state's lock: any lease there is a killed run's, expired
        now=_EVERY_LEASE_EXPIRED if run.exclusive else datetime.now(UTC),
    )
    if not claimed:
        return None
    try:
        return run.store.source_state(source.id)
    except BaseException:
        with contextlib.suppress(CivicfeedError):  # else it expires
            run.store.release(lease, run.holder)
        raise


async def _failed(run: _Run, source: Source, reason: str, kind: str) -> SourceResult:
    assert run.store is not None
    try:
        await run.calls(run.store.save_failure, source.id, reason, run.now)
    except CivicfeedError as exc:
        reason += f" (and the failure could not be recorded: {exc})"
    return SourceResult(source.id, "failed", error=reason, error_kind=kind)


def _held_back(source: Source, state: SourceState, zone: tzinfo) -> SourceResult:
    when = next_attempt(state, source.every)
    assert when is not None
    reason = (
        f"{state.last_error} (failed {state.consecutive_failures} times in a row; next "
        f"attempt after {for_people(when, zone)})"
    )
    return SourceResult(source.id, "skipped", error=reason)


def _source_deadline(source: Source, fetched: Fetched) -> float:
    """A source's time runs from the start of its request (not its wait in the queue)."""
    return time.monotonic() - fetched.elapsed + source.timeout


async def _read(run: _Run, fetched: Fetched, source: Source, deadline: float) -> Normalised:
    """Extraction and normalisation in a worker process, abandoned when the source's time is
    up: the event loop only hands the document over and takes the candidates back."""
    from . import work

    return await work.run(
        read_document,
        _portable(fetched),
        source,
        run.config.tz,
        run.config.date_order_of(source),
        seconds=deadline - time.monotonic(),
        what="parsing",
    )


@dataclass(frozen=True)
class Planned:
    """A fetched document read and planned against its source's stored entries: the plan
    to save, and what the source's result and state record of the document."""

    plan: SourcePlan
    candidates: int  # the items that gave a candidate
    items: int  # items extracted, those that gave no candidate included
    warnings: tuple[str, ...]
    title: str | None = None  # the document's own title (see Extraction)
    language: str | None = None


async def _read_and_plan(
    run: _Run, fetched: Fetched, source: Source, deadline: float, existing: Sequence[Entry]
) -> Planned:
    """Extraction, normalisation and deduplication against the stored entries in a worker
    process (a source that reads no detail pages), abandoned when the source's time is up."""
    from . import work

    return await work.run(
        plan_document,
        _portable(fetched),
        source,
        run.config.tz,
        run.config.date_order_of(source),
        existing,
        run.now,
        seconds=deadline - time.monotonic(),
        what="parsing",
    )


def plan_document(
    fetched: Fetched,
    source: Source,
    zone: tzinfo,
    date_order: str,
    existing: Sequence[Entry],
    now: datetime,
) -> Planned:
    """A fetched document's items, extracted, normalised and planned against the source's
    stored entries (``dedup.plan_source``; a worker process's job); ExtractError when no item
    gives a candidate."""
    normalised = read_document(fetched, source, zone, date_order)
    warnings = list(normalised.warnings)
    _warn_undated(
        zip(normalised.date_texts, normalised.candidates, strict=True),
        _known_links(existing),
        warnings,
    )
    if not normalised.candidates:
        raise ExtractError("no usable items: " + "; ".join(warnings[:3]))
    from .dedup import plan_source

    plan = plan_source(existing, normalised.candidates, now=now, zone=zone)
    return Planned(
        plan,
        len(normalised.candidates),
        normalised.items,
        tuple(warnings),
        normalised.title,
        normalised.language,
    )


def read_document(fetched: Fetched, source: Source, zone: tzinfo, date_order: str) -> Normalised:
    """A fetched document's items, extracted and normalised (a worker process's job)."""
    from .extract import extract  # the parsers: loaded by the workers, not the event loop's

    return normalised_of(extract(fetched, source), fetched, source, zone, date_order)


def normalised_of(
    extraction: Extraction, fetched: Fetched, source: Source, zone: tzinfo, date_order: str
) -> Normalised:
    """The items of a document's extraction, normalised."""
    from .normalise import normalise_all

    return normalise_all(
        extraction, source_id=source.id, base_url=fetched.url, zone=zone, date_order=date_order
    )


def _portable(fetched: Fetched) -> Fetched:
    """The response as a worker process can receive it (a read-only mapping cannot be sent)."""
    return replace(fetched, headers=dict(fetched.headers))


# what a source's extraction does not depend on: a change of these reads nothing again
_NOT_EXTRACTION = {"id", "title", "description", "home", "tags", "timeout", "max_bytes"}
_NOT_EXTRACTION |= {"every", "cron", "max_entries", "language"}


def settings_digest(config: Config, source: Source) -> str:
    """A digest of every setting that shapes what a source's page yields (selectors,
    title_remove, html, date_order, the url, the time zone, ...)."""
    settings = json_fields(source, exclude=_NOT_EXTRACTION)
    settings["_config"] = {"timezone": config.timezone, "date_order": config.date_order}
    text = json.dumps(settings, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def _fetch_and_store(
    run: _Run, source: Source, state: SourceState, lease: _Lease | None = None
) -> SourceResult:
    assert run.store is not None
    settings = settings_digest(run.config, source)
    # settings changed (or --reparse): fetch without validators, so that the page is read
    # again with the new settings; a 304 would keep the entries as the old ones made them.
    # A store from before digests were kept knows none: the settings count as unchanged.
    fresh = run.reparse or state.settings not in (None, settings)
    fetched = await run.fetcher.fetch(
        source.url,
        timeout=source.timeout,
        max_bytes=source.max_bytes,
        validators=Validators() if fresh else state.validators,
    )
    deadline = _source_deadline(source, fetched)
    if fetched.not_modified:

        def save_unchanged() -> None:  # in a thread: saved, then the lease given back
            assert run.store is not None
            try:
                run.store.save_not_modified(source.id, run.now, settings)
            finally:
                if lease is not None:
                    _release(run, lease)

        await run.calls(save_unchanged)
        return SourceResult(source.id, "not-modified")
    existing = await run.calls(run.store.entries, [source.id])
    details: list[DetailPage] = []
    if _reads_details(source):  # the detail pages are fetched here: planned here after them
        normalised = await _read(run, fetched, source, deadline)
        known = _known_links(existing)
        candidates, warnings, details = await _candidates(
            run,
            source,
            normalised,
            fetched.url,
            known,
            deadline,
            stored=existing,
            details=await run.calls(run.store.detail_pages, source.id),
        )
        if not candidates:
            raise ExtractError("no usable items: " + "; ".join(warnings[:3]))
        from .dedup import plan_source

        plan = plan_source(existing, candidates, now=run.now, zone=run.config.tz)
        read = Planned(
            plan,
            len(candidates),
            normalised.items,
            (),
            normalised.title,
            normalised.language,
        )
    else:  # read and planned in a worker process: the event loop only saves the plan
        read = await _read_and_plan(run, fetched, source, deadline, existing)
        plan = read.plan
        warnings = list(read.warnings)
    if state.last_item_count and read.items < state.last_item_count // 4:
        warnings.append(
            f"only {read.items} items, {state.last_item_count} last "
            "time: has the page layout changed?"
        )
    # the feeds it is in are not current until published
    changed = bool(plan.new or plan.changed)
    from .publish import feeds_of, stale_digest

    if run.feeds is None and run.track_feeds:
        run.feeds = feeds_of(run.config)
    feeds = run.feeds.get(source.id, ()) if run.feeds is not None else ()
    forget = [f for f in feeds if changed and f not in run.stale]
    forgotten: list[str] = []

    def save() -> None:  # in a thread: the feeds forgotten, the plan saved, the lease back
        assert run.store is not None
        try:
            stale_digest(run.store, forget)
            forgotten.extend(forget)
            run.store.save_success(
                source.id,
                plan,
                validators=fetched.validators,
                item_count=read.items,
                at=run.now,
                details=details,
                settings=settings,
                title=read.title,
                language=read.language,
            )
        finally:
            if lease is not None:
                _release(run, lease)

    try:
        await run.calls(save)
    finally:
        run.stale.update(forgotten)  # only once forgotten: until then, others forget them too
    return _success(source.id, plan, read.candidates, warnings)


def _success(source_id: str, plan: SourcePlan, items: int, warnings: list[str]) -> SourceResult:
    outcome: Outcome = "new" if plan.new else "updated" if plan.changed else "unchanged"
    return SourceResult(
        source_id,
        outcome,
        new=len(plan.new),
        updated=len(plan.changed),
        unchanged=plan.unchanged,
        items=items,
        warnings=tuple(warnings),
    )


async def _candidates(
    run: _Run,
    source: Source,
    normalised: Normalised,
    page_url: str,
    known_links: set[str],
    deadline: float,
    *,
    stored: Sequence[Entry] = (),
    details: Mapping[str, DetailPage] | None = None,
) -> tuple[list[Candidate], list[str], list[DetailPage]]:
    """The candidates of an extraction; with their detail pages' dates and articles, and
    what those pages said about themselves (for a later conditional request)."""
    warnings = list(normalised.warnings)
    # each candidate with its item's date as written
    pairs = list(zip(normalised.date_texts, normalised.candidates, strict=True))
    pages: list[DetailPage] = []
    if source.follow or (source.html is not None and source.html.detail_date):
        pairs, pages = await _dates_from_detail_pages(
            run, source, pairs, known_links, warnings, deadline, stored, details or {}, page_url
        )
    _warn_undated(pairs, known_links, warnings)
    return [candidate for _, candidate in pairs], warnings, pages


def _warn_undated(
    pairs: Iterable[tuple[str | None, Candidate]],
    known_links: Container[str | None],
    warnings: list[str],
) -> None:
    """A warning for each new item without a date that was understood."""
    for date_text, candidate in pairs:
        if candidate.published is None and candidate.link not in known_links:
            what = f"date {date_text.strip()[:40]!r} not understood" if date_text else "no date"
            warnings.append(f"{candidate.title[:60]}: {what}; using the time it was first seen")


def _known_links(stored: Iterable[Entry]) -> set[str]:
    """The links of the stored entries whose date is known (their items need no date)."""
    return {e.link for e in stored if e.link and e.date_known}


async def _dates_from_detail_pages(
    run: _Run,
    source: Source,
    pairs: list[tuple[str | None, Candidate]],
    known_links: set[str],
    warnings: list[str],
    deadline: float,
    stored: Sequence[Entry] = (),
    details: Mapping[str, DetailPage] | None = None,
    page_url: str = "",
) -> tuple[list[tuple[str | None, Candidate]], list[DetailPage]]:
    """Read the detail pages the listing needs, each at most once per run.

    For a date (``detail_date``, or ``follow`` without a date on the listing), and with
    ``follow`` for the article itself. With ``follow``, a page whose article is stored is
    requested again only when its item on the listing changed, and then conditionally.
    """
    details = details or {}
    selector = source.html.detail_date if source.html else None
    by_link = {e.link: e for e in stored if e.link}
    sites = _own_sites(source, page_url)
    listing = listing_digest(c for _, c in pairs)
    wanted: list[str] = []
    for_dates: set[str] = set()
    for _, c in pairs:
        if not c.link:
            continue
        page = details.get(c.link)
        for_date = (
            bool(selector)
            and c.published is None
            and c.link not in known_links
            and (page is None or page.undated_listing != listing)  # no date for this listing
        )
        for_article = source.follow and _article_wanted(c, by_link.get(c.link), page)
        if for_date or for_article:
            wanted.append(c.link)
        if for_date:
            for_dates.add(c.link)
    if source.follow:
        wanted = [link for link in wanted if may_follow(link, sites, source.follow_hosts)]
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) > MAX_DETAIL_FETCHES:
        warnings.append(
            f"{len(wanted)} items need their detail page; "
            f"{MAX_DETAIL_FETCHES} are read now, the rest in later runs"
        )
        first_seen = {link: entry.first_seen for link, entry in by_link.items()}
        wanted = detail_turns(wanted, details, first_seen)[:MAX_DETAIL_FETCHES]
    undated = {c.link for _, c in pairs if c.published is None}

    def allowed(url: str) -> bool:
        return may_follow(url, sites, source.follow_hosts)

    async def read(link: str) -> tuple[str, datetime | None, str | None, DetailPage | None]:
        before = details.get(link)
        stored_article = by_link.get(link) is not None and bool(by_link[link].content)
        conditional = before.validators if before and stored_article else None
        # detail pages share the source's deadline: they must not stretch the run
        remaining = deadline - time.monotonic()
        if remaining <= 0.5:
            warnings.append(f"detail page {link}: no time left within the source's timeout")
            return link, None, None, None
        try:
            page = await run.fetcher.fetch(
                link,
                timeout=source.timeout,
                max_bytes=source.max_bytes,
                deadline=deadline,
                validators=conditional,
                stay_on=allowed if source.follow else None,
            )
            if page.not_modified:
                return (
                    link,
                    None,
                    None,
                    DetailPage(
                        link,
                        conditional or Validators(),
                        run.now,
                        undated_listing=listing if link in for_dates else None,
                    ),
                )
            from . import work

            date_text, content, cut, notes = await work.run(
                read_detail_page,
                _portable(page),
                selector,
                source.content if source.follow else None,
                source.follow,
                seconds=deadline - time.monotonic(),
                what="parsing the page",
            )
            warnings.extend(f"detail page {link}: {note}" for note in notes)
            order = run.config.date_order_of(source)
            if link in undated:
                from .normalise import parse_date

                when = parse_date(date_text, run.config.tz, order)
            else:
                when = None
            if cut:
                warnings.append(f"detail page {link}: the article was shortened")
            no_date = listing if link in for_dates and when is None else None
            seen = DetailPage(link, page.validators, run.now, undated_listing=no_date)
            return link, when, content or None, seen
        except CivicfeedError as exc:
            warnings.append(f"detail page {link}: {exc}")
        except Exception as exc:  # the failure stays with its item, never its source
            warnings.append(f"detail page {link}: {_reason(exc)}")
        failures = before.failures + 1 if before else 1
        validators = before.validators if before else Validators()
        return link, None, None, DetailPage(link, validators, run.now, failures)

    results = await asyncio.gather(*(read(link) for link in wanted))
    dates = {link: when for link, when, _, _ in results}
    articles = {link: content for link, _, content, _ in results if content}
    pages = [page for _, _, _, page in results if page is not None and _reads_details(source)]
    out = []
    for date_text, c in pairs:
        if c.published is None and dates.get(c.link or ""):
            c = replace(c, published=dates[c.link or ""])
        if c.link in articles:
            c = replace(c, content=articles[c.link])
        out.append((date_text, c))
    return out, pages


def read_detail_page(
    fetched: Fetched, date_selector: str | None, content_selector: str | None, follow: bool
) -> tuple[str | None, str | None, bool, tuple[str, ...]]:
    """A detail page read and its article sanitised (a worker process's job): its date text,
    its article's safe HTML (None without one), whether that was shortened, the warnings."""
    from .extract import read_detail

    date_text, article, notes = read_detail(fetched, date_selector, content_selector, follow)
    from .normalise.text import sanitise_html

    content, cut = sanitise_html(article, fetched.url) if article else ("", False)
    return date_text, content or None, cut, notes


# a detail page that failed this often in a row is given up (its entry keeps its teaser)
MAX_DETAIL_FAILURES = 3


def _reads_details(source: Source) -> bool:
    return bool(source.follow or (source.html is not None and source.html.detail_date))


def listing_digest(candidates: Iterable[Candidate]) -> str:
    """What a listing shows, for telling whether it changed: its items' titles and links."""
    hasher = hashlib.sha256()
    for candidate in candidates:
        hasher.update(f"{candidate.title}\t{candidate.link}\n".encode())
    return hasher.hexdigest()[:32]


def detail_turns(
    wanted: Sequence[str], pages: Mapping[str, DetailPage], first_seen: Mapping[str, datetime]
) -> list[str]:
    """The detail pages in the order they get their turn when not all can be read in one run:
    pages never read first, the longest-known item first (then in listing order); then pages
    read before, the longest ago first. So every item gets its turn, however many there are.
    """
    position = {link: index for index, link in enumerate(wanted)}
    earliest, latest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)

    def turn(link: str) -> tuple[bool, datetime, datetime, int]:
        checked = pages[link].checked if link in pages else None
        return (
            checked is not None,
            checked or earliest,
            first_seen.get(link, latest),
            position[link],
        )

    return sorted(wanted, key=turn)


def _article_wanted(candidate: Candidate, entry: Entry | None, page: DetailPage | None) -> bool:
    """Whether an item's detail page is to be read for its article (``follow``).

    Once per entry; again (conditionally) only when its item on the listing changed; after
    a failure up to MAX_DETAIL_FAILURES times in all.
    """
    if urlsplit(candidate.link or "").path.lower().endswith(".pdf"):
        return False  # a document, not an article page: the teaser stays
    if page is None or page.checked is None:
        return True  # never read
    if page.failures:
        return page.failures < MAX_DETAIL_FAILURES
    if entry is None:
        return False
    # read again (conditionally) only when the listing shows a change
    return entry.title != candidate.title or (
        bool(candidate.summary) and entry.summary != candidate.summary
    )


def _own_sites(source: Source, page_url: str) -> set[str]:
    return {_site(url) for url in (source.url, source.home, page_url) if url and _site(url)}


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def may_follow(url: str, sites: set[str], extra_hosts: Sequence[str] = ()) -> bool:
    """Only http(s) links on the listing's own site, or on a host named in follow_hosts."""
    split = urlsplit(url)
    if split.scheme not in ("http", "https"):
        return False
    host = _site(url)
    return host in sites or host in {h.split(":")[0].removeprefix("www.") for h in extra_hosts}


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


# --- health --------------------------------------------------------------------------------


def source_status(config: Config, store: Store | None = None) -> list[dict[str, Any]]:
    """Every configured source's health, as plain data (for ``status`` and monitoring)."""
    if store is None:
        if not config.state.exists():  # nothing was ever refreshed: do not create the store
            return [_row(source, SourceState(source.id), 0) for source in config.sources]
        with closing(open_store(config.state, read_only=True)) as own:
            return source_status(config, own)
    counts = store.entry_counts()
    return [
        _row(source, store.source_state(source.id), counts.get(source.id, 0))
        for source in config.sources
    ]


def _row(source: Source, state: SourceState, entries: int) -> dict[str, Any]:
    return {
        "id": source.id,
        "state": health(state),
        "entries": entries,
        "last_success": _iso(state.last_success),
        "last_error": state.last_error,
        "last_error_at": _iso(state.last_error_at),
        "consecutive_failures": state.consecutive_failures,
        "next_attempt": _iso(next_attempt(state, source.every)),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
