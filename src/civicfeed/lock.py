"""One refresh at a time per state: an advisory lock the kernel drops when its holder dies (a
file lock beside a SQLite state; a PostgreSQL advisory lock, which the server drops when the
holder's connection ends, for a database)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LockTimeout, StoreError
from .store.location import StateLocation, parse_state

__all__ = ["state_lock"]


@contextmanager
def state_lock(
    state: StateLocation | Path,
    *,
    wait: float,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.2,
) -> Iterator[None]:
    location = parse_state(state)
    if location.path is None:
        from .store.postgres import advisory_lock

        assert location.url is not None
        with advisory_lock(location.url, "refresh", wait=wait, on_wait=on_wait, poll=poll):
            yield
        return
    with _file_lock(location.path, wait=wait, on_wait=on_wait, poll=poll):
        yield


@contextmanager
def _file_lock(
    state: Path, *, wait: float, on_wait: Callable[[str], None] | None, poll: float
) -> Iterator[None]:
    path = state.with_name(state.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another refresh of {state} (process {_holder(fd)}) "
                        f"is still running after {wait:g}s; giving up"
                    ) from None
                if not told and on_wait:
                    on_wait(f"waiting for another refresh of {state} (process {_holder(fd)})")
                    told = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip() or "unknown"
    except OSError:
        return "unknown"
