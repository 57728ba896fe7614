"""Where the state lives: the naming rule of the ``state:`` key, and nothing else.

``state: .civicfeed/state.db`` (a path, relative to the configuration file) or
``sqlite:///srv/civicfeed/state.db`` is a SQLite file; ``postgresql://user@host/db`` (or
``postgres://``) is a PostgreSQL database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["StateLocation", "parse_state"]

Kind = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class StateLocation:
    kind: Kind
    path: Path | None = None  # the SQLite file
    url: str | None = None  # the PostgreSQL connection URL

    @staticmethod
    def sqlite(path: Path) -> StateLocation:
        return StateLocation("sqlite", path=path)

    def resolved(self, base: Path) -> StateLocation:
        """A relative SQLite path taken relative to ``base`` (the configuration's folder)."""
        if self.path is None:
            return self
        return StateLocation.sqlite(base / self.path)

    def exists(self) -> bool:
        """Whether a state may already be there: a SQLite file that exists; a database
        server always (whether the schema is there is the store's to say)."""
        return self.path.exists() if self.path is not None else True

    @property
    def is_file(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        return _redacted(self.url or "")


def parse_state(value: object) -> StateLocation:
    """The location a ``state:`` value names; ValueError with the reason otherwise."""
    if isinstance(value, StateLocation):
        return value
    if isinstance(value, Path):
        return StateLocation.sqlite(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("state must be a file path, sqlite:///PATH or postgresql://…")
    text = value.strip()
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(text)
        if not parts.path.strip("/") and not parts.hostname:
            raise ValueError("a postgresql:// state needs a host or a database name")
        return StateLocation("postgresql", url=text)
    if scheme == "sqlite":
        path = text[len("sqlite://") :]
        if not path or path == "/":
            raise ValueError("sqlite:/// needs a file path (sqlite:///srv/civicfeed/state.db)")
        # sqlite:///abs/path is absolute; sqlite://rel/path (two slashes) is relative
        return StateLocation.sqlite(Path(path))
    if scheme:
        raise ValueError(
            f"unknown state scheme {scheme!r}: use a file path, sqlite:///PATH or postgresql://…"
        )
    return StateLocation.sqlite(Path(text))


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
