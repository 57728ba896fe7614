"""`civicfeed run`: the scheduler, the refreshes it starts, and the feed server, in one process.

Every source is refreshed once at start and then on its own schedule; after each refresh the
feeds it is part of are rewritten (only when their content changes). SIGTERM and SIGINT stop
the process cleanly: no new fetches start, fetches under way are abandoned (a source's entries
are only ever written in one transaction after its fetch), writes under way finish, and the
process exits 0 within a few seconds. The state lock is held for the whole life of the service.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

from . import work
from .accesslog import AccessLog
from .clock import for_people
from .config import Config, Source
from .fetch import Fetcher
from .metrics import Metrics, Snapshot
from .monitor import StateReader, freshness, snapshot
from .publish import Publisher
from .refresh import RefreshReport, SourceResult, fetcher_for, refresh, source_status
from .scheduler import Scheduler
from .server import FeedServer, Files, Site, make_app
from .store import Store, open_store

__all__ = ["EventLog", "Service", "serve_only", "served_files"]

STOP_GRACE = 5.0  # seconds a stopping service gives the refreshes under way


@dataclass
class EventLog:
    """One line per event: readable on a terminal, JSON for machines."""

    out: TextIO = field(default_factory=lambda: sys.stderr)
    json_lines: bool = False
    zone: tzinfo | None = None  # of the time stamps of text lines; JSON has ISO 8601

    def refreshed(self, result: SourceResult) -> None:
        if self.json_lines:
            self._json(
                event="refresh",
                source=result.source_id,
                outcome=result.outcome,
                new=result.new,
                updated=result.updated,
                items=result.items,
                error=result.error,
                warnings=list(result.warnings),
                seconds=round(result.seconds, 3),
            )
        else:
            self._text(result.describe())
            for warning in result.warnings:
                self._text(f"    warning: {warning}")

    def note(self, event: str, message: str, **fields: Any) -> None:
        if self.json_lines:
            self._json(event=event, message=message, **fields)
        else:
            self._text(message)

    def _text(self, line: str) -> None:
        stamp = for_people(datetime.now(UTC), self.zone, seconds=True)
        print(f"{stamp} {line}", file=self.out, flush=True)

    def _json(self, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
        print(json.dumps(record, ensure_ascii=False), file=self.out, flush=True)


class Service:
    def __init__(
        self,
        config: Config,
        *,
        listen: tuple[str, int] | None = None,
        log: EventLog | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.config = config
        self.listen = listen
        self.log = log or EventLog()
        self.access_log = access_log
        self.scheduler = Scheduler(config.tz)
        self.publisher = Publisher(config)
        self.server: FeedServer | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._store: Store | None = None
        self._fetcher: Fetcher | None = None
        self._announcing: asyncio.Task[None] | None = None
        self.reader = StateReader(config)  # for the server: its own reads, never the writer's

    async def run(self, stop: asyncio.Event | None = None) -> int:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if self.listen is not None:  # an address in use stops us before anything starts
            site = _site(
                self.config,
                self.access_log,
                snapshot=lambda: snapshot(
                    self.config,
                    self._store,
                    {fid: s.count for fid, s in self.publisher.summaries.items()},
                ),
                gone=lambda: self._store.removed_feeds() if self._store else set(),
            )
            files = served_files(self.config, self.reader)
            self.server = FeedServer(make_app(files, self.health, site), *self.listen)
        self._store = open_store(self.config.state)
        try:
            async with fetcher_for(self.config) as fetcher:
                self._fetcher = fetcher
                # the index and feeds from what is known; what cannot be written is said
                for error in self.publisher.publish(self._store).errors:
                    self.log.note("error", error)
                serving = self._start_server()
                # the parsing workers start before the first refresh needs them
                await work.warm_up()
                self._schedule()
                await stop.wait()
                await self._stop(serving)
        finally:
            self._store.close()
            self.reader.close()
            work.close()  # the parsing workers end with the service
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        self.log.note("stopped", "civicfeed stopped")
        return 0

    def _schedule(self) -> None:
        start = datetime.now(self.config.tz)
        for source in self.config.sources:
            self.scheduler.add(
                source.id, self._job_for(source), every=source.every, cron=source.cron, first=start
            )
        self.scheduler.start()
        self.log.note(
            "started",
            f"civicfeed running: {len(self.config.sources)} sources scheduled",
            sources=len(self.config.sources),
        )

    def _start_server(self) -> asyncio.Task[None] | None:
        if self.server is None or self.listen is None:
            return None
        task = asyncio.create_task(self.server.serve())
        task.add_done_callback(self._server_ended)
        # the reference keeps the announcing task alive until it is done
        self._announcing = asyncio.create_task(
            _announce(self.server, task, self.listen[0], self.log)
        )
        return task

    def _server_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.note("error", f"feed server failed: {task.exception()}")

    def _job_for(self, source: Source) -> Callable[[], Any]:
        async def job() -> None:
            if self._stopping:
                return
            task = asyncio.current_task()
            assert task is not None
            assert self._store is not None
            assert self._fetcher is not None
            self._running.add(task)
            try:
                report = await refresh(
                    self.config,
                    only=[source.id],
                    store=self._store,
                    fetcher=self._fetcher,
                    publisher=self.publisher,
                )
                self._report(report)
            except asyncio.CancelledError:
                # only a stopping service cancels a job: it ends here, quietly for the
                # scheduler, and the source's entries stay as they were
                self.log.note(
                    "cancelled", f"{source.id}: refresh abandoned at shutdown", source=source.id
                )
            except Exception as exc:  # a bug must not stop the schedule
                self.log.note("error", f"{source.id}: internal error: {exc!r}", source=source.id)
            finally:
                self._running.discard(task)

        return job

    def _report(self, report: RefreshReport) -> None:
        for result in report.results:
            self.log.refreshed(result)
        for error in report.write_errors:
            self.log.note("error", error)
        if report.changed_feeds:
            self.log.note(
                "written",
                f"feeds rewritten: {', '.join(report.changed_feeds)}",
                feeds=list(report.changed_feeds),
            )

    async def _stop(self, serving: asyncio.Task[None] | None) -> None:
        self._stopping = True
        self.log.note("stopping", "stopping: no new refreshes")
        self.scheduler.shutdown()
        running = list(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=STOP_GRACE / 2)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE / 2)
        if self.server is not None and serving is not None:
            self.server.stop()
            await asyncio.wait([serving], timeout=STOP_GRACE)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Is the scheduler alive, are the feeds fresh, and which sources are failing?

        Called in a thread (see server.py): it reads the store through its own read-only
        connection, so neither a refresh's write lock nor the event loop holds it up."""
        store = self.reader.get()
        rows = source_status(self.config, store) if store else []
        fresh = freshness(self.config, store)
        failing = [row["id"] for row in rows if row["state"] == "failing"]
        alive = self.scheduler.running and not self._stopping
        status = "stopping" if self._stopping else _status(fresh, failing)
        return alive and not fresh["stale"], {
            "status": status,
            "scheduler": {"running": alive, "next_runs": self.scheduler.next_runs()},
            **fresh,
            "failing": failing,
            "sources": rows,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def _status(fresh: dict[str, Any], failing: list[str]) -> str:
    if fresh["stale"]:
        return "never refreshed" if fresh["last_refresh"] is None else "stale"
    return "degraded" if failing else "ok"


def served_files(config: Config, reader: StateReader) -> Files | Path:
    """What the server serves: the output folder, or the files in the state database."""
    return reader if config.publishes_to_database else config.output


def _site(
    config: Config,
    access_log: AccessLog | None,
    *,
    snapshot: Callable[[], Snapshot],
    gone: Callable[[], Collection[str]],
) -> Site:
    return Site(
        base_url=config.base_url,
        trust_proxy=config.trust_proxy,
        access_log=access_log,
        metrics=Metrics(snapshot),
        gone=gone,
    )


async def _announce(server: FeedServer, task: asyncio.Task[None], host: str, log: EventLog) -> None:
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        log.note("listening", f"serving feeds on http://{host}:{server.port}/", port=server.port)


async def serve_only(
    config: Config,
    listen: tuple[str, int],
    log: EventLog,
    stop: asyncio.Event | None = None,
    access_log: AccessLog | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> int:
    """`civicfeed serve`: the feed server alone, for feeds refreshed by cron."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    reader = StateReader(config)  # one read-only store for every request

    def health() -> tuple[bool, dict[str, Any]]:
        store = reader.get()
        rows = source_status(config, store) if store else source_status(config)
        fresh = freshness(config, store)
        failing = [row["id"] for row in rows if row["state"] == "failing"]
        return not fresh["stale"], {
            "status": _status(fresh, failing),
            "scheduler": None,
            **fresh,
            "failing": failing,
            "sources": rows,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def read_snapshot() -> Snapshot:
        return snapshot(config, reader.get())

    def gone() -> set[str]:
        store = reader.get()
        return store.removed_feeds() if store else set()

    site = _site(config, access_log, snapshot=read_snapshot, gone=gone)
    try:
        server = FeedServer(make_app(served_files(config, reader), health, site), *listen)
        task = asyncio.create_task(server.serve())
        await _announce(server, task, listen[0], log)
        if task.done():
            return 1
        if on_listening is not None:
            on_listening(server.port)
        await stop.wait()
        server.stop()
        await asyncio.wait([task], timeout=STOP_GRACE)
    finally:
        reader.close()
    log.note("stopped", "civicfeed stopped")
    return 0
