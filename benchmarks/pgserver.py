"""A real PostgreSQL server for the tests and the benchmark: the one named by
CIVICFEED_TEST_POSTGRES, else a throw-away cluster started from Debian's binaries (as an
unprivileged user, in a temporary folder, on a loopback port), else none, with the reason, so
that the tests that need one are skipped and say why."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ENV = "CIVICFEED_TEST_POSTGRES"
BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class Unavailable(Exception):
    """No PostgreSQL server can be reached or started; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    for folder in BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise Unavailable(
            f"{ENV} is not set and PostgreSQL's {name} is not installed "
            "(apt-get install postgresql)"
        )
    return found


@contextmanager
def server(settings: str = "") -> Iterator[str]:
    """The URL of a server the tests may create databases on; ``settings``: further server
    options of a cluster started here (``-c track_functions=all``)."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                f"{ENV} is not set and there is no unprivileged 'postgres' user to run initdb"
            ) from None
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="civicfeed-pg-"))
    data = folder / "data"
    log = folder / "server.log"
    if run_as:
        os.chown(folder, user.pw_uid, user.pw_gid)
    port = _free_port()
    try:
        subprocess.run(
            [*run_as, initdb, "-D", str(data), "-U", "civicfeed", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o",
             f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -F -c max_connections=200 "
             f"{settings}"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        if log.exists():
            detail += "\n" + log.read_text(errors="replace")
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(f"could not start a PostgreSQL cluster: {detail}") from exc
    try:
        yield f"postgresql://civicfeed@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    import psycopg

    name = "civicfeed_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server_url)._replace(path="/" + name).geturl()
    finally:
        with psycopg.connect(server_url, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
