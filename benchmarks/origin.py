"""The benchmark's web origin: N generated sources on many loopback addresses, in a process of
its own (its CPU is not the contender's).

    python -m benchmarks.origin --sources 1000 [--addresses 64] [--first-address 1]
        [--latency 0.1]

HTTP/1.1 with keep-alive on one asyncio loop; every request waits ``latency`` seconds before
its answer (304s too). Every answer carries an ETag and a Last-Modified; ``If-None-Match``
(else ``If-Modified-Since``) that matches gets ``304 Not Modified``.

It is driven over its standard input, one command a line, each answered by one JSON line on
its standard output: ``change PERCENT`` (a new version of that share of the sources; see
``documents.changes``), ``stats`` (requests, answers and connections since the last
``stats``), ``paths`` (requests per path, the query left out, since the last ``paths``). On
start it prints the addresses it listens on; at the end of its standard input (the driver is
gone, whatever the reason) it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

from .documents import CHANGE_STEP, Source, changes, content_type, document, sources

_PATH = re.compile(r"^/s(\d+)(\.rss|/)$")
_MODIFIED = datetime(2026, 2, 1, tzinfo=UTC)


class Site:
    def __init__(self, count: int, addresses: int, latency: float, first: int = 1) -> None:
        self.sources = sources(count, addresses, first)
        self.versions = [0] * count
        self.latency = latency
        self.cache: dict[tuple[int, int], bytes] = {}
        self.stats: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.prepare(range(count))

    def prepare(self, indices: Iterable[int]) -> None:
        """Make the current documents now, not while a contender is being measured."""
        for i in indices:
            key = (i, self.versions[i])
            if key not in self.cache:
                self.cache[key] = document(self.sources[i], key[1])

    def change(self, percent: float) -> int:
        touched = changes(len(self.sources), percent)
        for i in touched:
            self.versions[i] += CHANGE_STEP
        self.prepare(touched)
        return len(touched)

    def validators(self, i: int) -> tuple[str, str]:
        version = self.versions[i]
        modified = format_datetime(_MODIFIED + timedelta(hours=version), usegmt=True)
        return f'"s{i}-v{version}"', modified

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, list[str], bytes]:
        path = path.split("?", 1)[0]
        match = _PATH.match(path)
        source = (
            self.sources[int(match[1])] if match and int(match[1]) < len(self.sources) else None
        )
        if source is None or source.path != path:
            return 404, ["Content-Type: text/plain"], b"not found\n"
        etag, modified = self.validators(source.index)
        fields = [f"ETag: {etag}", f"Last-Modified: {modified}"]
        if _not_modified(headers, etag, modified):
            return 304, fields, b""
        key = (source.index, self.versions[source.index])
        body = self.cache.get(key)
        if body is None:
            body = self.cache[key] = document(source, key[1])
        return 200, [f"Content-Type: {content_type(source)}", *fields], body


def _not_modified(headers: dict[str, str], etag: str, modified: str) -> bool:
    tags = headers.get("if-none-match")
    if tags is not None:
        return any(t.strip().removeprefix("W/") in (etag, "*") for t in tags.split(","))
    since = headers.get("if-modified-since")
    if since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            return False
    return False


_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 400: "Bad Request"}


async def _serve(site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # counted where they began: an answer still due after `stats` (to a contender that was
    # stopped) does not count for the next one
    site.stats["connections"] += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length:
                await reader.readexactly(length)
            stats = site.stats
            stats["requests"] += 1
            site.paths[parts[1].split("?", 1)[0] if len(parts) == 3 else ""] += 1
            await asyncio.sleep(site.latency)
            status, fields, body = (
                site.answer(parts[1], headers) if len(parts) == 3 else (400, list[str](), b"")
            )
            stats[str(status)] += 1
            stats["bytes"] += len(body)
            close = headers.get("connection", "").lower() == "close" or parts[-1] == "HTTP/1.0"
            fields.append(f"Content-Length: {len(body)}")
            if close:
                fields.append("Connection: close")
            top = f"HTTP/1.1 {status} {_REASONS[status]}\r\n" + "\r\n".join(fields) + "\r\n\r\n"
            writer.write(top.encode("latin-1") + (body if parts[0] != "HEAD" else b""))
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.CancelledError):
        return  # the client went away, or the origin is ending
    finally:
        writer.close()


async def main_async(count: int, addresses: int, latency: float, first: int = 1) -> None:
    site = Site(count, addresses, latency, first)
    servers = []
    listening = []
    for k in range(first, first + addresses):
        server = await asyncio.start_server(
            lambda r, w: _serve(site, r, w), f"127.0.0.{k}", 0, backlog=1024
        )
        servers.append(server)
        listening.append([f"127.0.0.{k}", server.sockets[0].getsockname()[1]])
    _say({"listening": listening})
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    with open(sys.stdin.fileno(), "rb", 0, closefd=False) as stdin:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), stdin)
        while line := (await commands.readline()).decode().split():
            if line[0] == "change":
                _say({"changed": site.change(float(line[1]))})
            elif line[0] == "stats":
                _say(dict(site.stats))
                site.stats = Counter()
            elif line[0] == "paths":
                _say({"paths": dict(site.paths)})
                site.paths = Counter()
            else:
                _say({"error": f"unknown command {line[0]!r}"})
    for server in servers:
        server.close()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class OriginProcess:
    """The driver's handle on an origin process: ``with OriginProcess(...) as origin:``."""

    def __init__(
        self, count: int, *, addresses: int = 64, latency: float = 0.1, first_address: int = 1
    ) -> None:
        self.count, self.addresses_wanted, self.latency = count, addresses, latency
        self.first_address = first_address
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OriginProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.origin",
                f"--sources={self.count}",
                f"--addresses={self.addresses_wanted}",
                f"--first-address={self.first_address}",
                f"--latency={self.latency}",
            ],
            cwd=Path(__file__).parents[1],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the driver, which ends it
        )
        ready = self._read()
        self.ports = {host: port for host, port in ready["listening"]}
        return self

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, source: Source) -> str:
        return f"http://{source.address}:{self.ports[source.address]}{source.path}"

    def change(self, percent: float) -> int:
        return int(self._ask(f"change {percent}")["changed"])

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._ask("stats").items()}

    def paths(self) -> dict[str, int]:
        """Requests per path since the last call."""
        return {k: int(v) for k, v in self._ask("paths")["paths"].items()}

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdout is not None
        stream: IO[bytes] = self.process.stdout
        line = stream.readline()
        if not line:
            raise RuntimeError(f"the origin process ended (exit code {self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, required=True)
    parser.add_argument("--addresses", type=int, default=64)
    parser.add_argument("--first-address", type=int, default=1, help="k of 127.0.0.k")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args.sources, args.addresses, args.latency, args.first_address))


if __name__ == "__main__":
    main()
