"""Write: feed files replaced atomically, and only when their bytes change."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import WriteError

__all__ = ["remove_feed_files", "remove_leftovers", "write_if_changed"]

FEED_EXTENSIONS = ("rss", "atom", "json", "html")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it holds exactly that; True if the file changed.

    The new content goes to a temporary file in the same folder, is flushed to disk and
    renamed over the old one: readers see the old file or the new one, never a mix, and an
    unchanged file keeps its mtime so that conditional requests keep answering 304.
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
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        temporary = None
        _sync_folder(path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return True


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_leftovers(folder: Path) -> None:
    """Delete temporary files that a killed run left behind (never a finished feed)."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(".*.tmp"):
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
