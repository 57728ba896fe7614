"""`civicfeed run --worker`: any number of processes, on one machine or several, sharing the
work of a PostgreSQL state through a job queue in that database (procrastinate, used only here).

The jobs:

- ``refresh_source(source_id)``: one source's unit of work (refresh.refresh_source). Queued
  with the queueing lock ``source:<id>`` (never queued twice) and run under the lock
  ``source:<id>`` (never run twice at once). When its entries changed, it queues
  ``publish_feed`` for every feed the source is part of.
- ``publish_feed(feed_id)``: renders one feed and writes it to the output; when its files
  changed, it queues ``publish_site`` and pings the WebSub hub.
- ``publish_site()``: the index, the OPML file and the stylesheet, from every feed in the store
  (queued at most once at a time, however many feeds changed meanwhile); also removes the feeds
  no longer configured.
- ``tick`` (periodic, every TICK seconds): queues the sources that are due, a pure function of
  their schedules and the store's last attempts (scheduler.due).
- ``recover_stalled`` (periodic): a worker sends a heartbeat every few seconds; the jobs of a
  worker whose heartbeat is older than ``stalled_after`` (a killed process, a lost machine) are
  queued again.

Every request holds a per-host lease in the database (``host:<host>:<slot>``, ``per_host``
slots), so ``per_host`` holds across all workers. A failed fetch is data (the source's result,
recorded in the store, retried at its next turn); only an infrastructure failure (the database,
a crash) makes a job fail, and such a job is tried again with backoff.

``python -m procrastinate --app=civicfeed.workers.app`` finds the tasks here and connects with
the libpq environment (PGHOST, PGDATABASE, ...); ``civicfeed worker-admin`` runs the same
commands on the configuration's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast
from uuid import uuid4

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager

from . import clock, work
from .accesslog import AccessLog
from .config import Config, Source
from .errors import CivicfeedError, StoreError, TransientError
from .fetch import Fetcher
from .publish import Publisher, feeds_of
from .refresh import fetcher_for, notify_hub
from .refresh import refresh_source as refresh_one
from .scheduler import Schedule, due
from .service import STOP_GRACE, EventLog, serve_only
from .store import Store, open_store
from .write import FolderOutput, open_output

__all__ = ["DEFAULT_STALLED_AFTER", "TICK_SECONDS", "admin", "app", "queue_schema", "run_worker"]

DEFAULT_STALLED_AFTER = 60.0  # seconds without a heartbeat after which a worker counts as dead
TICK_SECONDS = 5  # how often the due sources are queued (and stalled jobs looked for)
_TICK_CRON = f"* * * * * */{TICK_SECONDS}"  # croniter: a sixth field is seconds
HOST_LEASE_MARGIN = 5.0  # a host lease outlasts its request's time by this many seconds
_HOST_POLL = (0.01, 0.1)  # first and longest pause between tries for a busy host's slot
PUBLISH_DELAY = 5.0  # seconds an aggregate's or the index's publishing waits for more changes

# connected by the libpq environment for procrastinate's own command line; a worker replaces
# the connector with one to its configuration's state
app = App(connector=PsycopgConnector())

# an infrastructure failure, or a job cut short by its worker's shutdown: tried again after 2,
# 4, 8, 16, 32 s (by any worker), then the job is failed
_RETRY = RetryStrategy(
    max_attempts=5,
    exponential_wait=2,
    retry_exceptions=[TransientError, cast(type[Exception], asyncio.CancelledError)],
)
# a result of refresh_source that says the infrastructure failed, not the source
_TRANSIENT_KINDS = frozenset({StoreError.kind, "internal"})

log = logging.getLogger("civicfeed")


def queue_schema() -> str:
    """The job queue's schema (procrastinate's), for the PostgreSQL store's migrate()."""
    return str(SchemaManager.get_schema())


@dataclass
class Runtime:
    """What the jobs of one worker process share."""

    config: Config
    store: Store
    fetcher: Fetcher
    log: EventLog
    stalled_after: float
    folder_output: bool  # the output is a folder: one publish at a time (write.FolderOutput)


def _runtime(context: JobContext) -> Runtime:
    return cast(Runtime, context.additional_context["civicfeed"])


# --- the jobs -----------------------------------------------------------------------------


@app.task(name="refresh_source", pass_context=True, retry=_RETRY)
async def refresh_source(context: JobContext, source_id: str, force: bool = False) -> str:
    rt = _runtime(context)
    try:
        source = rt.config.source(source_id)
    except KeyError:
        return "not in the configuration"
    # a source refreshed since this job was queued (by the job ahead of it) is not due again;
    # a job tried again after a failure is
    if not force and not context.job.attempts:
        state = await asyncio.to_thread(rt.store.source_state, source_id)
        schedule = {source_id: schedule_of(rt.config, source)}
        if not due(schedule, {source_id: state}, clock.now()):
            return "not due"
    result = await refresh_one(
        rt.config,
        source,
        store=rt.store,
        fetcher=rt.fetcher,
        now=clock.now(),
        force=force,
        exclusive=False,
        # of this source's jobs one runs at a time (its lock): one taking over from a killed
        # worker's takes over its lease too
        holder=f"job:source:{source_id}",
    )
    rt.log.refreshed(result)
    kinds = {result.error_kind or "other": 1} if result.outcome == "failed" else {}
    with contextlib.suppress(CivicfeedError):  # the next job records it
        await asyncio.to_thread(rt.store.save_refresh, clock.now(), result.seconds, kinds)
    if result.outcome == "failed" and result.error_kind in _TRANSIENT_KINDS:
        raise TransientError(f"{source_id}: {result.error}")
    # a job tried again may follow one that saved the entries and died before queueing
    # their feeds: they are queued again (an unchanged feed is left as it is)
    if result.outcome in ("new", "updated") or (context.job.attempts and result.ok):
        for feed_id in feeds_of(rt.config).get(source_id, ()):
            await defer_publish_feed(rt, feed_id)
    elif result.outcome == "failed" and not await _ever_succeeded(rt, source_id):
        await defer_publish_site(rt)  # the index says why its feed is still waiting
    return result.outcome


async def _ever_succeeded(rt: Runtime, source_id: str) -> bool:
    state = await asyncio.to_thread(rt.store.source_state, source_id)
    return state.last_success is not None


@app.task(name="publish_feed", pass_context=True, retry=_RETRY, priority=5)
async def publish_feed(context: JobContext, feed_id: str) -> str:
    rt = _runtime(context)
    report = await asyncio.to_thread(
        Publisher(rt.config).publish, rt.store, feeds=[feed_id], site=False
    )
    for error in report.errors:
        rt.log.note("error", error, feed=feed_id)
    if report.written:
        rt.log.note("written", f"feed rewritten: {feed_id}", feeds=[feed_id])
    if report.written or context.job.attempts:  # (see refresh_source)
        await defer_publish_site(rt)
    hub_errors = await notify_hub(rt.config, rt.fetcher, report.changed_feeds)
    for error in hub_errors:
        rt.log.note("error", error, feed=feed_id)
    if report.errors:
        raise TransientError(f"feed {feed_id}: {'; '.join(report.errors)}")
    return "written" if report.written else "unchanged"


@app.task(name="publish_site", pass_context=True, retry=_RETRY, priority=4)
async def publish_site(context: JobContext) -> str:
    rt = _runtime(context)
    report = await asyncio.to_thread(Publisher(rt.config).publish, rt.store, feeds=(), site=True)
    for error in report.errors:
        rt.log.note("error", error)
    if report.errors:
        raise TransientError("; ".join(report.errors))
    return f"{len(report.written)} file(s) written"


@app.periodic(cron=_TICK_CRON, periodic_id="tick")
@app.task(name="tick", pass_context=True, queueing_lock="tick", priority=10)
async def tick(context: JobContext, timestamp: int) -> str:
    rt = _runtime(context)
    states = await asyncio.to_thread(rt.store.source_states)
    schedules = {source.id: schedule_of(rt.config, source) for source in rt.config.sources}
    # a source queued or under way is not queued again (a refresh under way would make the
    # next one find it not due: a job for nothing)
    manager = context.app.job_manager
    waiting = {
        job.task_kwargs.get("source_id")
        for status in ("todo", "doing")
        for job in await manager.list_jobs_async(task=refresh_source.name, status=status)
    }
    queued = 0
    for source_id in due(schedules, states, clock.now()):
        if source_id not in waiting:
            queued += await defer_refresh(source_id)
    return f"{queued} source(s) queued"


@app.periodic(cron=_TICK_CRON, periodic_id="recover")
@app.task(name="recover_stalled", pass_context=True, queueing_lock="recover", priority=10)
async def recover_stalled(context: JobContext, timestamp: int) -> str:
    rt = _runtime(context)
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=rt.stalled_after))
    for job in stalled:
        what = f"job {job.id} ({job.call_string}) of a worker silent for {rt.stalled_after:g}s"
        source_id = job.task_kwargs.get("source_id")
        if job.task_name == refresh_source.name and isinstance(source_id, str):
            # it may have saved entries and died before queueing their feeds (a retry would
            # then find nothing new); publishing a feed whose stories are as published writes
            # nothing
            for feed_id in feeds_of(rt.config).get(source_id, ()):
                await defer_publish_feed(rt, feed_id)
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            # the same work is queued already (the tick queued the source again): that job
            # does it once this one, which holds its lock, is ended
            await manager.finish_job(job, status=Status.ABORTED, delete_job=False)
            rt.log.note("recovered", f"{what} ended: the same is queued already", job=job.id)
            continue
        rt.log.note("recovered", f"{what} queued again", job=job.id)
    return f"{len(stalled)} stalled job(s) recovered"


def schedule_of(config: Config, source: Source) -> Schedule:
    return Schedule(source.every, source.cron, config.tz)


async def defer_refresh(source_id: str, *, force: bool = False) -> int:
    """Queue a refresh of the source unless one is queued already; 1 if queued."""
    name = f"source:{source_id}"
    return await _defer(refresh_source, name, name, source_id=source_id, force=force)


async def defer_publish_feed(rt: Runtime, feed_id: str) -> int:
    """Queue the feed's publishing unless it is queued already (the one queued will see the
    change); 1 if queued. An aggregate waits PUBLISH_DELAY seconds first, so that the changes
    of its members in that time are published together: it reads every member's entries."""
    name = f"feed:{feed_id}"
    wait = 0.0 if any(source.id == feed_id for source in rt.config.sources) else PUBLISH_DELAY
    return await _defer(publish_feed, name, _publish_lock(rt, name), wait, feed_id=feed_id)


async def defer_publish_site(rt: Runtime, wait: float = PUBLISH_DELAY) -> int:
    """Queue the index (and OPML file) unless queued already; it waits ``wait`` seconds, so
    that the feeds published in that time are in it together: it reads every feed."""
    return await _defer(publish_site, "site", _publish_lock(rt, "site"), wait)


def _publish_lock(rt: Runtime, name: str) -> str:
    # with a folder as output, one publish at a time (a publish tidies the folder of the
    # temporary files a killed one left, and another's would be among them)
    return "publish" if rt.folder_output else name


async def _defer(task: Any, queueing_lock: str, lock: str, wait: float = 0.0, **kwargs: Any) -> int:
    options: dict[str, Any] = {"lock": lock, "queueing_lock": queueing_lock}
    if wait:
        options["schedule_in"] = {"seconds": wait}
    try:
        await task.configure(**options).defer_async(**kwargs)
    except AlreadyEnqueued:
        return 0
    return 1


# --- per-host leases ----------------------------------------------------------------------


class HostLeases:
    """The per-host limit across processes: a request holds one of its host's ``per_host``
    leases in the store (``host:<host>:<slot>``) while it is under way. A lease is taken for
    ``hold`` seconds and renewed while the request goes on, so one a killed worker held is free
    again within ``hold`` seconds, however long its request could have taken."""

    def __init__(self, store: Store, per_host: int, holder: str, hold: float) -> None:
        self.store, self.per_host, self.holder, self.hold = store, per_host, holder, hold

    @asynccontextmanager
    async def __call__(self, host: str, seconds: float) -> AsyncIterator[None]:
        holder = f"{self.holder}:{uuid4().hex[:12]}"
        hold = min(seconds + HOST_LEASE_MARGIN, self.hold)
        name = await self._claim(host, hold, holder)
        renewing = asyncio.create_task(self._renew(name, holder, hold))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(CivicfeedError):  # else it expires
                await asyncio.to_thread(self.store.release, name, holder)

    async def _take(self, name: str, holder: str, hold: float) -> bool:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=hold)
        return await asyncio.to_thread(
            partial(self.store.claim, name, holder, until=until, now=now)
        )

    async def _claim(self, host: str, hold: float, holder: str) -> str:
        pause, longest = _HOST_POLL
        first = random.randrange(self.per_host)  # the slots are tried from a random one
        while True:
            for step in range(self.per_host):
                name = f"host:{host}:{(first + step) % self.per_host}"
                if await self._take(name, holder, hold):
                    return name
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, longest)

    async def _renew(self, name: str, holder: str, hold: float) -> None:
        while True:
            await asyncio.sleep(hold / 3)
            with contextlib.suppress(CivicfeedError):  # tried again at the next turn
                await self._take(name, holder, hold)


# --- the worker process -------------------------------------------------------------------


class _NoTracebacks(logging.Formatter):
    """procrastinate's warnings and errors as one line each, without tracebacks (a job that
    fails says so in a line; what failed is in the job's own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return "civicfeed: " + record.getMessage().splitlines()[0]


def _quiet_queue_log() -> None:
    queue_log = logging.getLogger("procrastinate")
    if any(isinstance(h.formatter, _NoTracebacks) for h in queue_log.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_NoTracebacks())
    queue_log.addHandler(handler)
    queue_log.setLevel(logging.WARNING)
    queue_log.propagate = False


def _connector(url: str) -> PsycopgConnector:
    return PsycopgConnector(conninfo=url, kwargs={"options": "-c timezone=UTC"})


async def run_worker(
    config: Config,
    *,
    log: EventLog,
    stalled_after: float = DEFAULT_STALLED_AFTER,
    concurrency: int | None = None,
    listen: tuple[str, int] | None = None,
    access_log: AccessLog | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the jobs of the state's queue until SIGTERM or SIGINT; 0 then. ``listen``: serve
    the feeds too (as `civicfeed serve`)."""
    url = config.state.url
    assert url is not None, "a worker needs a postgresql:// state"
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _quiet_queue_log()
    # jobs at once: the configured number, else the fetch concurrency up to 16
    jobs_at_once = concurrency or min(config.concurrency, 16)
    # every job calls the store and takes its host leases in threads: enough for all of them
    loop.set_default_executor(ThreadPoolExecutor(min(64, jobs_at_once + 4), "civicfeed-store"))
    name = f"{socket.gethostname()}:{os.getpid()}"
    store = await asyncio.to_thread(open_store, config.state)  # migrated: the queue too
    try:
        leases = HostLeases(store, config.per_host, f"worker:{name}", hold=stalled_after)
        async with fetcher_for(config, host_slots=leases) as fetcher:
            rt = Runtime(
                config,
                store,
                fetcher,
                log,
                stalled_after,
                isinstance(open_output(config, store), FolderOutput),
            )
            with app.replace_connector(_connector(url)):
                async with app.open_async():
                    await work.warm_up()
                    await defer_publish_site(rt, wait=0)  # the index, whatever is known
                    serving = (
                        asyncio.create_task(serve_only(config, listen, log, stop, access_log))
                        if listen is not None
                        else None
                    )
                    jobs = asyncio.create_task(
                        app.run_worker_async(
                            name=name,
                            concurrency=jobs_at_once,
                            additional_context={"civicfeed": rt},
                            install_signal_handlers=False,
                            delete_jobs="successful",
                            shutdown_graceful_timeout=STOP_GRACE,
                            update_heartbeat_interval=max(0.5, min(10.0, stalled_after / 4)),
                            stalled_worker_timeout=stalled_after,
                            fetch_job_polling_interval=TICK_SECONDS,
                        )
                    )
                    log.note(
                        "started",
                        f"civicfeed worker {name}: {len(config.sources)} sources, "
                        f"stalled after {stalled_after:g}s",
                        sources=len(config.sources),
                    )
                    await _until_stopped(stop, jobs, serving)
    finally:
        await asyncio.to_thread(store.close)
        work.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.note("stopped", "civicfeed worker stopped")
    return 0


async def _until_stopped(
    stop: asyncio.Event, jobs: asyncio.Task[None], serving: asyncio.Task[int] | None
) -> None:
    waiting = asyncio.create_task(stop.wait())
    ended = [t for t in (jobs, serving) if t is not None]
    await asyncio.wait([waiting, *ended], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    jobs.cancel()  # the worker stops taking jobs; those under way get STOP_GRACE to end
    with contextlib.suppress(asyncio.CancelledError):
        await jobs
    if serving is not None:
        await asyncio.wait([serving], timeout=STOP_GRACE)
    waiting.cancel()


# --- procrastinate's command line on the configuration's state ----------------------------


def admin(config: Config, argv: Sequence[str]) -> int:
    """`civicfeed worker-admin ARGS`: procrastinate's command line (``shell list_jobs``,
    ``shell retry ID``, ``healthchecks``, ``defer``, ...) on the configuration's state."""
    from procrastinate import cli

    url = config.state.url
    assert url is not None
    parsed = cli.parse_args([*argv])
    cli.configure_logging(
        verbosity=parsed.pop("verbose", None) or 0,
        log_level=parsed.pop("log_level", None),
        format=parsed.pop("log_format"),
        style=parsed.pop("log_format_style"),
    )

    async def execute() -> None:
        with app.replace_connector(_connector(url)):
            parsed["app"] = app
            await cli.execute_command(parsed)

    asyncio.run(execute())
    return 0
