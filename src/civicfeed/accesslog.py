"""The feed server's access log: one line per request, in the combined log format (as
Apache and nginx write it, for the usual log tools) or as JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO

__all__ = ["AccessLog"]


@dataclass
class AccessLog:
    out: TextIO = field(default_factory=lambda: sys.stderr)
    json_lines: bool = False
    zone: tzinfo | None = None  # of the time stamps; default the machine's

    def request(
        self, scope: Mapping[str, Any], status: int, sent: int, seconds: float, trust_proxy: bool
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope.get("client") or ("-", 0))[0]
        if trust_proxy and headers.get("x-forwarded-for"):
            client = headers["x-forwarded-for"].split(",")[0].strip()
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        path = target.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        now = datetime.now(UTC).astimezone(self.zone)
        if self.json_lines:
            line = json.dumps(
                {
                    "time": now.isoformat(timespec="seconds"),
                    "event": "request",
                    "client": client,
                    "method": scope["method"],
                    "path": path,
                    "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                    "status": status,
                    "bytes": sent,
                    "referer": headers.get("referer"),
                    "user_agent": headers.get("user-agent"),
                    "seconds": round(seconds, 4),
                },
                ensure_ascii=False,
            )
        else:
            request = f"{scope['method']} {path} HTTP/{scope.get('http_version', '1.1')}"
            line = (
                f"{client} - - [{now:%d/%b/%Y:%H:%M:%S %z}] {_quoted(request)} {status} "
                f"{sent or '-'} {_quoted(headers.get('referer', '-'))} "
                f"{_quoted(headers.get('user-agent', '-'))}"
            )
        print(line, file=self.out, flush=True)


def _quoted(value: str) -> str:
    """A field in double quotes, with quotes, backslashes and control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped) + '"'
