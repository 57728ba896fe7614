"""Write: the published files (feeds, archive pages, index, OPML, stylesheet) through one
``Output``, replaced only when their bytes change.

Two outputs: the folder (``FolderOutput``: files replaced atomically, flushed to disk) and the
state database (``StoreOutput``, see store/__init__.py: every publish one transaction). The
publisher writes through the protocol only; the server and ``civicfeed export`` read it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol, TypeVar

from . import clock
from .errors import StoreError, WriteError
from .models import OutputFile

if TYPE_CHECKING:
    from .config import Config
    from .store import Store

_T = TypeVar("_T")

__all__ = [
    "CONTENT_TYPES",
    "FEED_EXTENSIONS",
    "ExportReport",
    "FolderOutput",
    "Output",
    "StoreOutput",
    "etag_of",
    "export_files",
    "feed_of",
    "is_temporary",
    "media_type",
    "open_output",
    "remove_feed_files",
    "remove_leftovers",
    "sync_folders",
    "write_if_changed",
]

FEED_EXTENSIONS = ("rss", "atom", "json", "html")  # the files of a feed, beside its archive

# the media type of each kind of file published, by the name's ending
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
}


def media_type(name: str) -> str:
    """The media type a published file is served with."""
    return CONTENT_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")


def etag_of(data: bytes) -> str:
    """The (strong) entity tag of a file's bytes: equal bytes, equal tags, on every output."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def feed_of(name: str) -> str | None:
    """The feed a published file belongs to: '<id>.<ext>' or 'archive/<id>/<n>.<ext>'."""
    parts = PurePosixPath(name).parts
    if len(parts) == 1 and PurePosixPath(name).suffix.lstrip(".") in FEED_EXTENSIONS:
        return PurePosixPath(name).stem
    if len(parts) == 3 and parts[0] == "archive":
        return parts[1]
    return None


class Output(Protocol):
    """Where a publish puts its files. Names are relative, with '/' (``herne.rss``,
    ``archive/herne/1.atom``).

    A publish calls ``begin()``, then ``put``/``exists``/``modified`` for each file, then
    ``flush()`` once: after it, every file put is durable (and, in the store, visible to
    readers at once, all of them together). ``remove_feed`` takes effect at once.
    """

    where: str  # for messages: the folder, or "the state database …"

    def begin(self) -> None:
        """A publish starts (the folder removes the temporary files a killed one left)."""
        ...

    def put(self, name: str, data: bytes) -> bool:
        """The file holds ``data`` after the next flush; True if that is a change. A file
        whose bytes are unchanged keeps its modification time (and ETag)."""
        ...

    def exists(self, name: str) -> bool: ...

    def modified(self, name: str) -> datetime | None:
        """When the file's bytes last changed; None if it is absent."""
        ...

    def read(self, name: str) -> OutputFile | None:
        """The file with its data; None if absent."""
        ...

    def names(self) -> list[str]:
        """Every published file, sorted."""
        ...

    def remove_feed(self, feed_id: str) -> None:
        """Delete a feed's files and its archive pages (a feed no longer configured)."""
        ...

    def flush(self) -> None:
        """Make the files put since ``begin`` durable, once per publish."""
        ...


def open_output(config: Config, store: Store) -> Output:
    """The output a configuration publishes to (``publish_to``, see config.py): the output
    folder, or ``store``'s database."""
    if config.publishes_to_database:
        return StoreOutput(store, f"the state database {config.state}")
    return FolderOutput(config.output)


class FolderOutput:
    """The output folder: each file replaced atomically (a temporary file renamed over it,
    flushed to disk first), the folders flushed once per publish.

    A file put is written into its temporary file at once; ``flush`` makes all of them
    durable, then renames each over its name (see ``_settle``). A name put again, read or
    asked about is settled first, with everything put before it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        self._folders: set[str] = set()  # by name as text: a publish puts every file
        self._pending: dict[str, str] = {}  # the temporary file of each name put, by name

    def begin(self) -> None:
        remove_leftovers(self.folder)

    def put(self, name: str, data: bytes) -> bool:
        target = os.path.join(self.where, name)
        if target in self._pending:  # put twice in one publish: the first settled
            self._settle()
        if _holds(target, data):
            return False
        temporary, handle = _written_beside(target, data)
        os.close(handle)  # flushed to disk by _settle, by name: a publish puts thousands
        self._pending[target] = temporary
        return True

    def exists(self, name: str) -> bool:
        # os.path, not pathlib: asked for every file of every feed on each publish
        target = os.path.join(self.where, name)
        if target in self._pending:
            self._settle()
        return os.path.isfile(target)

    def modified(self, name: str) -> datetime | None:
        path = self.folder / name
        if os.fspath(path) in self._pending:
            self._settle()
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.is_file() else None
        except OSError:
            return None

    def read(self, name: str) -> OutputFile | None:
        path = self.folder / name
        if os.fspath(path) in self._pending:
            self._settle()
        try:
            stat = path.stat()
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise WriteError(f"cannot read {path}: {exc.strerror or exc}") from exc
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return OutputFile(name, etag_of(data), modified, media_type(name), data)

    def names(self) -> list[str]:
        self._settle()
        if not self.folder.is_dir():
            return []
        found = []
        for place, folders, files in os.walk(self.folder):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for file in files:
                if not file.startswith(".") and not is_temporary(file):
                    found.append((Path(place) / file).relative_to(self.folder).as_posix())
        return sorted(found)

    def remove_feed(self, feed_id: str) -> None:
        self._settle()
        remove_feed_files(self.folder, feed_id)

    def flush(self) -> None:
        try:
            self._settle()
        finally:  # the renames made are made durable, whatever failed
            sync_folders(self._folders)

    def _settle(self) -> None:
        """The files put so far flushed to disk, then each renamed over its name: a batch
        of at least ``SYNC_WHOLE_FROM`` files by one flush of the whole file system where the
        system has one (``_sync_file_system``), any other batch one file at a time. A file
        that cannot be flushed or renamed is not renamed (its temporary file is removed),
        and the WriteError raised once the others are in place names each of them."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        failed = []
        whole = len(pending) >= SYNC_WHOLE_FROM and _sync_file_system(self.where)
        for target, temporary in pending.items():
            try:
                if not whole:
                    _sync_file(temporary)
                os.replace(temporary, target)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                failed.append(f"cannot write {target}: {exc.strerror or exc}")
                continue
            self._folders.add(os.path.dirname(target) or ".")
        if failed:
            raise WriteError("; ".join(failed))


# A publish of many files (a first run writes four to six per feed) makes them durable by one
# call that flushes the file system they are on (Linux's syncfs) rather than one per file:
# each flush waits for the disk, so that a first run of a thousand feeds spent seconds
# waiting, which one flush of the batch pays once. A smaller batch (a service publishing the
# feeds of one source) flushes its files one by one, so as not to wait for whatever else is
# being written to that file system.
SYNC_WHOLE_FROM = 32

# the file systems whose syncfs makes a file as durable as its fsync does: local ones that
# write back every inode and flush the disk's cache. Not network or FUSE file systems, whose
# syncfs may leave the file to the server or the daemon (it is flushed file by file there).
WHOLE_FLUSH_TYPES = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "zfs", "tmpfs", "overlay"}
)


def _sync_file_system(folder: str) -> bool:
    """Whether everything written to the file system ``folder`` is on, by anyone, was
    flushed to disk (syncfs, Linux only, on a file system of WHOLE_FLUSH_TYPES): False where
    there is no such call or file system, or the call failed (the caller then flushes its
    files one by one, each reporting its own error)."""
    call = _syncfs()
    if call is None:
        return False
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        device = os.fstat(handle).st_dev
        if _file_system_type(os.major(device), os.minor(device)) not in WHOLE_FLUSH_TYPES:
            return False
        return bool(call(handle) == 0)
    finally:
        os.close(handle)


def _file_system_type(major: int, minor: int) -> str | None:
    """The type of the file system mounted from the device ``major:minor`` (the kernel's
    list of this process's mounts), None when it is not found there."""
    wanted = f"{major}:{minor}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == wanted and " - " in line:
                    return line.split(" - ", 1)[1].split()[0]
    except OSError:
        return None
    return None


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """The C library's syncfs, where it has one (found at the first batch: ctypes is not
    imported by a run that writes few files)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        call: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c")).syncfs
    except (OSError, AttributeError):
        return None
    return call


def _sync_file(path: str) -> None:
    """The file ``path`` flushed to disk (its data and what locates it)."""
    handle = os.open(path, _READ)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# The naming rule of temporary files, here only: ".<name>.<random>.tmp" beside the file they
# will replace. A dotfile, so that the feed server (which serves no dotfiles) never shows one.
_TEMPORARY_PREFIX = "."
_TEMPORARY_SUFFIX = ".tmp"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of write_if_changed's temporary files."""
    return (
        name.startswith(_TEMPORARY_PREFIX)
        and name.endswith(_TEMPORARY_SUFFIX)
        and len(name) > len(_TEMPORARY_PREFIX + _TEMPORARY_SUFFIX)
    )


class StoreOutput:
    """The state database (Store.save_outputs): the files of a publish are kept in memory
    and stored in one transaction by ``flush``, so a server reading the database sees all of
    them or none. What is stored is read once per publish (names, ETags, times; no data)."""

    def __init__(self, store: Store, where: str = "the state database") -> None:
        self.store = store
        self.where = where
        self._known: dict[str, OutputFile] | None = None
        self._pending: dict[str, OutputFile] = {}

    def begin(self) -> None:
        self._known = None
        self._pending.clear()

    def _stored(self) -> dict[str, OutputFile]:
        if self._known is None:
            self._known = {file.name: file for file in self._call(self.store.output_files)}
        return self._known

    def _call(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except StoreError as exc:
            raise WriteError(f"cannot read the published files in {self.where}: {exc}") from exc

    def _current(self, name: str) -> OutputFile | None:
        return self._pending.get(name) or self._stored().get(name)

    def put(self, name: str, data: bytes) -> bool:
        tag = etag_of(data)
        current = self._current(name)
        if current is not None and current.etag == tag:
            return False
        self._pending[name] = OutputFile(name, tag, clock.now(), media_type(name), data)
        return True

    def exists(self, name: str) -> bool:
        return self._current(name) is not None

    def modified(self, name: str) -> datetime | None:
        current = self._current(name)
        return current.modified if current is not None else None

    def read(self, name: str) -> OutputFile | None:
        return self._pending.get(name) or self._call(lambda: self.store.output_file(name))

    def names(self) -> list[str]:
        return sorted({*self._stored(), *self._pending})

    def remove_feed(self, feed_id: str) -> None:
        gone = [name for name in self.names() if feed_of(name) == feed_id]
        try:
            self.store.save_outputs((), gone)
        except StoreError as exc:
            raise WriteError(
                f"cannot remove the files of {feed_id} in {self.where}: {exc}"
            ) from exc
        for name in gone:
            self._stored().pop(name, None)
            self._pending.pop(name, None)

    def flush(self) -> None:
        if not self._pending:
            return
        files = list(self._pending.values())
        try:
            self.store.save_outputs(files)
        except StoreError as exc:
            raise WriteError(
                f"cannot store {len(files)} published files in {self.where}: {exc}"
            ) from exc
        stored = self._stored()
        for file in files:
            stored[file.name] = replace(file, data=None)
        self._pending.clear()


def write_if_changed(path: str | Path, data: bytes, folders: set[str] | None = None) -> bool:
    """Write ``data`` to ``path`` unless it holds exactly that; True if the file changed.

    The new content goes to a temporary file in the same folder, is flushed to disk and
    renamed over the old one: readers see the old file or the new one, never a mix, and an
    unchanged file keeps its mtime so that conditional requests keep answering 304.

    The rename is made durable by flushing the folder too: at once, or, when ``folders`` is
    given, by adding the folder to it for one ``sync_folders`` call after a batch of writes.
    """
    target = os.fspath(path)
    if _holds(target, data):
        return False
    _replace(target, data)
    folder = os.path.dirname(target) or "."
    if folders is None:
        _sync_folder(folder)
    else:
        folders.add(folder)
    return True


_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _holds(target: str, data: bytes) -> bool:
    """Whether the file ``target`` holds exactly ``data``: False if it is absent, or as
    soon as more or other bytes are read (read unbuffered, at most one byte past them)."""
    try:
        handle = os.open(target, _READ)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise WriteError(f"cannot read {target}: {exc.strerror or exc}") from exc
    try:
        wanted = len(data) + 1
        chunks = []
        while wanted > 0:
            chunk = os.read(handle, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
    except OSError as exc:  # a folder where the file should be, say
        raise WriteError(f"cannot read {target}: {exc.strerror or exc}") from exc
    finally:
        os.close(handle)
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)) == data


def _replace(target: str, data: bytes) -> None:
    """``target`` replaced by a temporary file beside it holding ``data``, flushed to disk
    first (write_if_changed; its folder is not flushed here)."""
    temporary, handle = _written_beside(target, data)
    try:
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc


def _written_beside(target: str, data: bytes) -> tuple[str, int]:
    """A temporary file beside ``target`` holding ``data``, not yet flushed to disk: its
    name and its descriptor, still open."""
    try:
        temporary, handle = _temporary_beside(target)
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(handle, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
    except OSError as exc:
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return temporary, handle


# the temporary files' names: this process's id and a count, made without a random source
# (a name taken, by a killed run's leftover with a reused process id, is skipped)
_made = itertools.count()
_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _temporary_beside(target: str) -> tuple[str, int]:
    """A new temporary file in ``target``'s folder (made with its parents where missing):
    its name and an open descriptor for writing."""
    folder, name = os.path.split(target)
    for _ in range(100):
        temporary = os.path.join(
            folder, f"{_TEMPORARY_PREFIX}{name}.{os.getpid()}-{next(_made)}{_TEMPORARY_SUFFIX}"
        )
        try:
            return temporary, os.open(temporary, _CREATE, 0o600)
        except FileExistsError:
            continue
        except FileNotFoundError:  # the folder first: tried only when it is not there
            os.makedirs(folder or ".", exist_ok=True)
    raise FileExistsError(f"no free temporary name beside {target}")


def sync_folders(folders: set[str]) -> None:
    """Flush each folder of a batch of writes once (see write_if_changed)."""
    for folder in sorted(folders):
        _sync_folder(folder)
    folders.clear()


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_leftovers(folder: Path) -> None:
    """Delete temporary files that a killed run left behind (never a finished feed), in
    ``folder`` and every folder below it (archive/<id>/ too); symbolic links not followed."""
    if not folder.is_dir():
        return
    for place, _, names in os.walk(folder):
        for name in names:
            if not is_temporary(name):
                continue
            leftover = Path(place) / name
            if not leftover.is_symlink():
                with contextlib.suppress(OSError):
                    leftover.unlink()


def remove_feed_files(folder: Path, feed_id: str) -> None:
    """Delete a feed's files and its archive pages (a feed no longer configured)."""
    targets = [folder / f"{feed_id}.{ext}" for ext in FEED_EXTENSIONS]
    archive = folder / "archive" / feed_id
    if archive.is_dir():
        targets += [p for p in archive.iterdir() if p.is_file()]
    for target in targets:
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot remove {target}: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):
        archive.rmdir()


@dataclass(frozen=True)
class ExportReport:
    written: tuple[str, ...] = ()  # names written (new or changed)
    unchanged: int = 0
    removed: tuple[str, ...] = ()  # feeds whose files were deleted
    errors: tuple[str, ...] = ()


def export_files(store: Store, folder: Path, gone: Collection[str]) -> ExportReport:
    """The files stored in the state database written into ``folder`` for static hosting:
    each replaced atomically (write_if_changed) when its bytes differ from the stored ETag,
    its modification time set to the stored one; the files of ``gone`` feeds deleted. The
    list is one committed state of the outputs; each file is read when it is written."""
    remove_leftovers(folder)
    written: list[str] = []
    removed: list[str] = []
    errors: list[str] = []
    unchanged = 0
    folders: set[str] = set()
    try:
        listed = store.output_files()
    except StoreError as exc:
        return ExportReport(errors=(f"cannot list the published files: {exc}",))
    for file in listed:
        if not _safe_name(file.name):
            errors.append(f"{file.name!r}: not a name inside {folder}; left out")
            continue
        target = folder / file.name
        stamp = int(file.modified.timestamp() * 1_000_000) * 1000
        try:
            same = target.is_file() and etag_of(target.read_bytes()) == file.etag
            if not same:
                stored = store.output_file(file.name)
                if stored is None or stored.data is None:
                    continue  # removed since it was listed
                write_if_changed(target, stored.data, folders)
                stamp = int(stored.modified.timestamp() * 1_000_000) * 1000
                written.append(file.name)
            else:
                unchanged += 1
            if target.stat().st_mtime_ns != stamp:
                os.utime(target, ns=(stamp, stamp))
        except (OSError, WriteError, StoreError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            errors.append(f"cannot export {file.name} to {target}: {reason}")
    for feed_id in sorted(gone):
        files = [folder / f"{feed_id}.{ext}" for ext in FEED_EXTENSIONS]
        if not any(path.exists() for path in files) and not (folder / "archive" / feed_id).exists():
            continue
        try:
            remove_feed_files(folder, feed_id)
            removed.append(feed_id)
        except WriteError as exc:
            errors.append(str(exc))
    sync_folders(folders)
    return ExportReport(tuple(written), unchanged, tuple(removed), tuple(errors))


def _safe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not name.startswith("/") and ".." not in parts and "\\" not in name
