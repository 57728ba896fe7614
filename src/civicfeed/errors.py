"""The one exception tree of civicfeed.

Third-party errors are translated into these once, at the boundary where they occur.
"""

from __future__ import annotations

from collections.abc import Sequence


class CivicfeedError(Exception):
    """Base of every error civicfeed raises on purpose."""

    kind = "other"  # what went wrong, in one word, for monitoring


class ConfigError(CivicfeedError):
    """sources.yaml is unreadable or invalid; the message names file, line and key.

    One error may carry several problems of the same file (``problems``, in file order); its
    own fields are those of the first, and its text is one line per problem.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
        column: int | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.column = column
        self.detail = message
        self.problems: tuple[ConfigError, ...] = (self,)
        super().__init__(self._render())

    omitted = 0  # further problems found but not listed

    @classmethod
    def of(cls, problems: Sequence[ConfigError], *, omitted: int = 0) -> ConfigError:
        """One error for all ``problems`` of a file (and ``omitted`` more not listed)."""
        first = problems[0]
        error = cls(
            first.detail, path=first.path, line=first.line, key=first.key, column=first.column
        )
        error.problems = tuple(problems)
        error.omitted = omitted
        lines = [p._render() for p in problems]
        if omitted:
            lines.append(f"{first.path}: and {omitted} more; fix these first")
        error.args = ("\n".join(lines),)
        return error

    def _render(self) -> str:
        where = self.path or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.detail}"


class FetchError(CivicfeedError):
    """A source could not be fetched (network, HTTP status, size or time limit).

    ``kind`` sorts failures for monitoring: dns, connect, tls, timeout, http, too-large,
    protocol, redirects, type, fetch."""

    def __init__(self, message: str, *, kind: str = "fetch") -> None:
        super().__init__(message)
        self.kind = kind


class ExtractError(CivicfeedError):
    """A fetched document could not be turned into items."""

    kind = "extract"


class StoreError(CivicfeedError):
    """The state store could not be read or written."""

    kind = "store"


class TransientError(CivicfeedError):
    """The infrastructure failed for a moment (the database, a crash), not the source: a
    worker's job that raises it is tried again, with backoff."""


class LockTimeout(CivicfeedError):
    """Another refresh holds the state for longer than we were willing to wait."""


class WriteError(CivicfeedError):
    """A feed file could not be written; the previous file is left in place."""


class WorkError(CivicfeedError):
    """A job in a worker process (parsing) overran its time or memory, or its worker died."""
