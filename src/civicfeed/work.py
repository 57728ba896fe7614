"""Work off the event loop: CPU-heavy steps (parsing; later rendering) in worker processes.

One pool per process, as many workers as there are cores, started on first use from a
forkserver (clean processes, whatever threads the caller runs). A job has a time limit that
starts when a worker takes it up; a job that overruns it, or whose caller is cancelled, is
abandoned and its worker killed and replaced, so a hostile document costs at most its time
limit and never blocks the event loop. Each worker may use at most ``MEMORY_LIMIT`` bytes of
address space. pebble is used only here.

The workers' start (a fork server that loads the parsers, then the workers forked from it)
takes some 0.5 s and is made in a thread of its own: the event loop goes on fetching meanwhile,
and jobs asked for wait for the workers without blocking it. ``work.start_soon()`` begins it
early, for a caller that knows there will be documents to parse.

``await work.run(function, *args, seconds=..., what="parsing")``; ``work.close()`` ends the
workers (also done at exit).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import os
import resource
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import WorkError

# pebble is imported by the workers' start (_get), in the thread that starts them: a refresh
# that asks for them early (start_soon) goes on meanwhile
if TYPE_CHECKING:
    from pebble import ProcessPool

__all__ = ["MEMORY_LIMIT", "close", "run", "schedule", "start_soon", "warm_up"]

T = TypeVar("T")

MEMORY_LIMIT = 2 * 2**30  # address space per worker: one parse, with room for the worst page

STARTUP_LIMIT = 60.0  # seconds the workers may take to start (the fork server loads lxml…)

_pool: ProcessPool | None = None
_started: Future[bool] | None = None  # a first, empty job: done once the workers run
_lock = threading.Lock()  # held while the pool is made and started (which waits for them)
# the start made in a thread for the event loop (see _starting): it never waits for _lock
_starting_now: Future[tuple[ProcessPool, Future[bool]]] | None = None
_starting_lock = threading.Lock()  # held only to read or replace _starting_now


def _limit_memory() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))


def _ready() -> bool:
    return True


def _get() -> tuple[ProcessPool, Future[bool]]:
    global _pool, _started
    from pebble import ProcessPool

    with _lock:
        if _pool is None or _started is None or not _pool.active:
            context = multiprocessing.get_context("forkserver")
            # the workers fork from a server that has the parsers loaded already
            context.set_forkserver_preload(["civicfeed.refresh", "civicfeed.extract"])
            _pool = ProcessPool(
                max_workers=os.cpu_count() or 1, initializer=_limit_memory, context=context
            )
            _started = _pool.schedule(_ready, timeout=STARTUP_LIMIT)
        return _pool, _started


def _start_in_thread(future: Future[tuple[ProcessPool, Future[bool]]]) -> None:
    try:
        future.set_result(_get())
    except BaseException as exc:  # handed to whoever waits for the workers
        future.set_exception(exc)


def _starting() -> Future[tuple[ProcessPool, Future[bool]]]:
    """The pool and its first job, as a future that a thread of its own completes once the pool
    is started: starting it waits for the fork server, and must not hold up the event loop.
    One start at a time; a pool that was closed or broke since is started again."""
    global _starting_now
    with _starting_lock:
        future = _starting_now
        if future is not None and future.done():
            failed = future.exception() is not None
            if failed or future.result()[0] is not _pool or not future.result()[0].active:
                future = None
        if future is None:
            future = _starting_now = Future()
            thread = threading.Thread(
                target=_start_in_thread, args=(future,), name="civicfeed-workers-start"
            )
            thread.daemon = True
            thread.start()
        return future


async def _workers() -> ProcessPool:
    """The pool, once its workers run: their start never counts against a job's time, and
    never blocks the event loop."""
    starting = _starting()
    if not starting.done():
        # shielded: a caller that is cancelled must not cancel the start for the others
        await asyncio.shield(asyncio.wrap_future(starting))
    pool, started = starting.result()
    if not started.done():
        # shielded: a caller that is cancelled must not cancel the start for the others
        with contextlib.suppress(Exception):
            await asyncio.shield(asyncio.wrap_future(started))
    return pool


async def run(function: Callable[..., T], *args: Any, seconds: float, what: str) -> T:
    """``function(*args)`` in a worker; WorkError if it takes more than ``seconds`` once
    started, runs out of memory or its worker dies. Its own exceptions come back as raised."""
    if seconds <= 0:
        raise WorkError(f"{what} did not start: no time left")
    future = (await _workers()).schedule(function, args=args, timeout=seconds)
    from pebble import ProcessExpired  # imported with the pool

    try:
        return await asyncio.wrap_future(future)
    except TimeoutError:
        raise WorkError(f"{what} took longer than {seconds:.1f}s; abandoned") from None
    except MemoryError:
        raise WorkError(f"{what} needed more than {MEMORY_LIMIT // 2**30} GiB; abandoned") from None
    except ProcessExpired as exc:
        raise WorkError(f"{what} ended its worker ({exc}); abandoned") from None


def schedule(function: Callable[..., T], *args: Any, seconds: float) -> Future[T]:
    """``function(*args)`` in a worker, for synchronous callers (publishing): its future,
    which fails as pebble says (a time limit of ``seconds`` once started, a dead worker)."""
    return _get()[0].schedule(function, args=args, timeout=seconds)


def start_soon() -> None:
    """Begin the workers' start in the background and return at once, for a caller that knows
    documents will come to be parsed: the first of them then waits less, or not at all."""
    _starting()


async def warm_up() -> None:
    """Start the workers now, so that the first job does not wait for them."""
    await _workers()


def close() -> None:
    """Stop the workers; jobs still running are abandoned."""
    global _pool, _started, _starting_now
    with _starting_lock:
        _starting_now = None
    with _lock:
        pool, _pool, _started = _pool, None, None
    if pool is not None:
        pool.stop()  # type: ignore[no-untyped-call]
        pool.join(timeout=5)


atexit.register(close)
