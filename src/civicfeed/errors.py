"""The one exception tree of civicfeed.

Third-party errors are translated into these once, at the boundary where they occur.
"""

from __future__ import annotations


class CivicfeedError(Exception):
    """Base of every error civicfeed raises on purpose."""


class ConfigError(CivicfeedError):
    """sources.yaml is unreadable or invalid; the message names file, line and key."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.path or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.detail}"


class FetchError(CivicfeedError):
    """A source could not be fetched (network, HTTP status, size or time limit)."""


class ExtractError(CivicfeedError):
    """A fetched document could not be turned into items."""


class StoreError(CivicfeedError):
    """The state store could not be read or written."""


class LockTimeout(CivicfeedError):
    """Another refresh holds the state for longer than we were willing to wait."""


class WriteError(CivicfeedError):
    """A feed file could not be written; the previous file is left in place."""
