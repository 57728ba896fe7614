"""Write: feed files replaced atomically, and only when their bytes change."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import WriteError

__all__ = [
    "is_temporary",
    "remove_feed_files",
    "remove_leftovers",
    "sync_folders",
    "write_if_changed",
]

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


FEED_EXTENSIONS = ("rss", "atom", "json", "html")


def write_if_changed(path: Path, data: bytes, folders: set[Path] | None = None) -> bool:
    """Write ``data`` to ``path`` unless it holds exactly that; True if the file changed.

    The new content goes to a temporary file in the same folder, is flushed to disk and
    renamed over the old one: readers see the old file or the new one, never a mix, and an
    unchanged file keeps its mtime so that conditional requests keep answering 304.

    The rename is made durable by flushing the folder too: at once, or, when ``folders`` is
    given, by adding the folder to it for one ``sync_folders`` call after a batch of writes.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WriteError(f"cannot read {path}: {exc.strerror or exc}") from exc
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f"{_TEMPORARY_PREFIX}{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent
        )
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        temporary = None
        if folders is None:
            _sync_folder(path.parent)
        else:
            folders.add(path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return True


def sync_folders(folders: set[Path]) -> None:
    """Flush each folder of a batch of writes once (see write_if_changed)."""
    for folder in sorted(folders):
        _sync_folder(folder)
    folders.clear()


def _sync_folder(folder: Path) -> None:
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
            leftover = Path(place) / name
            if is_temporary(name) and not leftover.is_symlink():
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
