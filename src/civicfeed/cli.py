"""The command line: a thin layer over the library.

Exit codes: 0 all well; 1 some source failed or a feed could not be written (feeds are still
written from everything known), or the address to serve on cannot be used; 2 configuration or
usage error (nothing fetched or written); 3 another process holds the state for longer than
--wait.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .errors import CivicfeedError, ConfigError, LockTimeout

# The commands import the pipeline, the server and their libraries when they run: `--help`
# and `--version` load none of them.
if TYPE_CHECKING:
    from .accesslog import AccessLog
    from .config import Config
    from .refresh import RefreshReport, SourceResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_PIPE = 141  # what a shell reports for a command ended by SIGPIPE (128 + 13)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"civicfeed: error: {message}\n")


class _Version(argparse.Action):
    """--version: the package's version (civicfeed.__version__)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from . import __version__

        print(f"civicfeed {__version__}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="civicfeed", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    config_help = "the configuration file (default: $CIVICFEED_CONFIG or ./sources.yaml)"

    run = commands.add_parser("refresh", help="fetch every source once and write the feeds")
    run.add_argument("--config", help=config_help)
    run.add_argument(
        "--only",
        nargs="+",
        metavar="ID",
        default=[],
        help="refresh only these sources (all feeds are still rewritten)",
    )
    run.add_argument(
        "--wait",
        default="10m",
        help="how long to wait for another refresh of the same state (default 10m)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    run.add_argument(
        "--force",
        action="store_true",
        help="also fetch sources that are held back after repeated failures",
    )
    run.add_argument(
        "--reparse",
        action="store_true",
        help="fetch every source (or those named with --only) unconditionally and read its "
        "items again with the current settings; entries keep their ids",
    )

    service = commands.add_parser(
        "run", help="refresh every source on its schedule; with --serve, serve the feeds too"
    )
    service.add_argument("--config", help=config_help)
    service.add_argument(
        "--serve",
        metavar="HOST:PORT",
        type=_listen,
        help="also serve the output folder over HTTP, e.g. 127.0.0.1:8080",
    )
    service.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="one line per refresh: text (default) or json",
    )
    service.add_argument(
        "--wait", default="10m", help="how long to wait for a refresh of the same state to finish"
    )
    service.add_argument(
        "--worker",
        action="store_true",
        help="be one of any number of workers sharing a postgresql:// state's refreshes "
        "through its job queue (on one machine or several)",
    )
    service.add_argument(
        "--stalled-after",
        metavar="DURATION",
        help="with --worker: the jobs of a worker without a heartbeat for this long are run "
        "again by the others (default: worker: stalled_after in the configuration, else 60s)",
    )
    service.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="with --worker: jobs run at once by this worker (default: worker: jobs in the "
        "configuration, else concurrency up to 16)",
    )

    serve = commands.add_parser("serve", help="serve the output folder over HTTP")
    serve.add_argument("--config", help=config_help)
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen,
        default=("127.0.0.1", 8080),
        help="where to listen (127.0.0.1:8080)",
    )
    serve.add_argument("--log-format", choices=("text", "json"), default=None)
    for command in (service, serve):
        logging = command.add_mutually_exclusive_group()
        logging.add_argument(
            "--access-log",
            metavar="FILE",
            help="append the access log to FILE (default: stderr; combined log format, or "
            "JSON lines with --log-format json)",
        )
        logging.add_argument("--no-access-log", action="store_true", help="keep no access log")

    status = commands.add_parser("status", help="show the health of every source")
    status.add_argument("--config", help=config_help)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    check = commands.add_parser("check", help="show what one source yields; writes nothing")
    check.add_argument("id", help="the source's id")
    check.add_argument("--config", help=config_help)
    check.add_argument("--json", action="store_true", help="machine-readable output")

    demo = commands.add_parser(
        "demo",
        help="see what civicfeed makes, without internet access: a sample of city pages is "
        "served on this computer, refreshed, and its feeds served",
    )
    demo.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen,
        default=("127.0.0.1", 8080),
        help="where to serve the feeds (127.0.0.1:8080)",
    )
    demo.add_argument(
        "--dir",
        metavar="DIR",
        help="the folder for the configuration, the feeds and the store (default: a new "
        "temporary folder)",
    )

    prune = commands.add_parser(
        "prune", help="delete the stored entries of sources no longer in the configuration"
    )
    prune.add_argument("--config", help=config_help)

    move = commands.add_parser(
        "migrate-state",
        help="copy the state (entries, source state, published feeds) into another backend",
    )
    move.add_argument("--config", help=config_help)
    move.add_argument(
        "--to", required=True, help="the new state: postgresql://… or a SQLite file path"
    )

    export = commands.add_parser(
        "export",
        help="write the feeds published into the database (publish_to: database) to a "
        "folder, for static hosting: only what changed, atomically",
    )
    export.add_argument("dir", metavar="DIR", help="the folder to write the files into")
    export.add_argument("--config", help=config_help)

    migrate = commands.add_parser(
        "migrate",
        help="create or bring the state's schema up to date (with PostgreSQL: the workers' job "
        "queue too); every other command does it on first use",
    )
    migrate.add_argument("--config", help=config_help)

    admin = commands.add_parser(
        "worker-admin",
        help="procrastinate's command line on the workers' job queue, e.g. "
        "`civicfeed worker-admin shell list_jobs status=failed`",
    )
    admin.add_argument("--config", help=config_help)
    admin.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="procrastinate's arguments (see --help)"
    )

    add = commands.add_parser(
        "add", help="add a source from its address: a feed, a page naming its feed, or a listing"
    )
    add.add_argument("url", help="the address of the feed or of the page that lists the news")
    add.add_argument(
        "--id", dest="source_id", help="the new source's id (default: from the address)"
    )
    add.add_argument("--title", help="the new source's title (default: the feed's or page's)")
    add.add_argument("--config", help=config_help)
    add.add_argument(
        "--dry-run", action="store_true", help="show what would be added; write nothing"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except BrokenPipeError:
        # the reader went away (`civicfeed check x | head`): stop quietly, as a shell command
        # killed by SIGPIPE would; later writes (and the flush at exit) go nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
        return EXIT_PIPE


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from .demo import run_demo
    from .lock import state_lock
    from .service import EventLog

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="civicfeed-demo-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"civicfeed: --dir: cannot create {folder}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    log = EventLog()
    with state_lock(folder / "state" / "state.db", wait=10):
        return asyncio.run(run_demo(folder.resolve(), args.listen, sys.stdout, log))


def _main(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .config import load_config

    logging.basicConfig(level=logging.WARNING, format="civicfeed: %(message)s")
    try:
        from .clock import now

        now()  # a CIVICFEED_NOW that is no time stops every command here, before any work
        if args.command == "demo":  # writes its own configuration
            return _demo(args)
        config_path = args.config or os.environ.get("CIVICFEED_CONFIG", "sources.yaml")
        if args.command == "add":  # the file may not exist yet
            return _add(Path(config_path), args)
        # the commands that run again and again remember a file that passed (see config.py)
        config = load_config(config_path, checked=args.command in ("refresh", "run"))
        if args.command == "refresh":
            return _refresh(config, args)
        if args.command == "status":
            return _status(config, as_json=args.json)
        if args.command == "migrate":
            return _migrate(config)
        if args.command == "prune":
            return _prune(config)
        if args.command == "export":
            return _export(config, Path(args.dir))
        if args.command == "migrate-state":
            return _migrate_state(config, args.to)
        if args.command == "run":
            return _worker(config, args) if args.worker else _run(config, args)
        if args.command == "worker-admin":
            return _worker_admin(config, args.arguments)
        if args.command == "serve":
            from .service import EventLog, serve_only

            log = EventLog(json_lines=_json_log(args.log_format), zone=config.tz)
            with _access_log(args, config) as access:
                return asyncio.run(serve_only(config, args.listen, log, access_log=access))
        return _check(config, args.id, as_json=args.json)
    except ConfigError as exc:
        if len(exc.problems) == 1:
            print(f"civicfeed: configuration error: {exc}", file=sys.stderr)
        else:  # one line per problem, each starting with file:line, as compilers do
            total = len(exc.problems) + exc.omitted
            shown = f" (the first {len(exc.problems)})" if exc.omitted else ""
            print(f"civicfeed: {total} configuration errors{shown}:", file=sys.stderr)
            print(exc, file=sys.stderr)
        return EXIT_USAGE
    except LockTimeout as exc:
        print(f"civicfeed: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except CivicfeedError as exc:
        print(f"civicfeed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("civicfeed: interrupted", file=sys.stderr)
        return 130


def _refresh(config: Config, args: argparse.Namespace) -> int:
    import asyncio

    from .config import keep_checked, parse_duration
    from .lock import state_lock
    from .refresh import refresh

    known = {source.id for source in config.sources}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        print(
            f"civicfeed: --only: no source with id {', '.join(map(repr, unknown))} in "
            f"{config.path}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        wait = parse_duration(args.wait)
    except ValueError as exc:
        print(f"civicfeed: --wait: {exc}", file=sys.stderr)
        return EXIT_USAGE
    total = len(args.only) or len(config.sources)
    display = _Display(sys.stdout, sys.stderr, total, quiet=args.quiet)
    with state_lock(config.state, wait=wait, on_wait=display.note):
        if args.reparse or not config.state.exists():
            # every source answered will be parsed (a new state has no validators for 304s):
            # the workers start now, beside the first requests, not when the first answer came
            from . import work

            work.start_soon()
        report = asyncio.run(
            refresh(
                config,
                only=args.only,
                force=args.force or bool(args.only),
                reparse=args.reparse,
                on_result=display.result,
            )
        )
        keep_checked()  # a new state's folder is made now: the file is kept for the next run
    display.finish()
    if not config.base_url and not args.quiet:  # -q (cron): failures only
        served = "the feeds" if config.publishes_to_database else f"{config.output.name}/"
        print(
            "civicfeed: warning: base_url is not set, so the feeds' own addresses and the "
            "index's subscribe addresses are relative; set base_url in "
            f"{config.path.name} to the public URL of {served}",
            file=sys.stderr,
        )
    for error in report.write_errors:
        print(f"civicfeed: {error}", file=sys.stderr)
    for result in report.failed:  # one line each, however many there are
        print(f"civicfeed: {result.source_id}: {result.error}", file=sys.stderr)
    if not (args.quiet and report.ok):
        print(f"civicfeed: {_summary(report)}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def _summary(report: RefreshReport) -> str:
    """One short line of counts: sources by outcome, entries, feeds rewritten."""
    results = report.results
    ok = [r for r in results if r.ok]
    failed = sum(r.outcome == "failed" for r in results)
    held = sum(r.outcome == "skipped" for r in results)
    parts = [f"{len(ok)} ok ({sum(r.new for r in ok)} new, {sum(r.updated for r in ok)} updated)"]
    if failed:
        parts.append(f"{failed} failed")
    if held:
        parts.append(f"{held} held back after repeated failures")
    feeds = len(report.changed_feeds)
    line = f"{len(results)} source(s): {', '.join(parts)}; {feeds} feed(s) rewritten"
    if report.write_errors:
        line += f"; {len(report.write_errors)} file(s) could not be written"
    return line


class _Display:
    """A line per source as it finishes; a progress counter while on a terminal."""

    def __init__(self, out: TextIO, err: TextIO, total: int, *, quiet: bool) -> None:
        self.out, self.err, self.total, self.quiet = out, err, total, quiet
        self.done = 0
        self.live = err.isatty()
        self._progress()

    def note(self, message: str) -> None:
        self._clear()
        print(f"civicfeed: {message}", file=self.err, flush=True)

    def result(self, result: SourceResult) -> None:
        self.done += 1
        self._clear()
        if not (self.quiet and result.ok):
            print(result.describe(), file=self.out, flush=True)
            if not self.quiet:
                for warning in result.warnings:
                    print(f"    warning: {warning}", file=self.out)
        self._progress()

    def finish(self) -> None:
        self._clear()

    def _progress(self) -> None:
        if self.live and self.done < self.total:
            print(
                f"\rrefreshing: {self.done}/{self.total} sources done",
                end="",
                file=self.err,
                flush=True,
            )

    def _clear(self) -> None:
        if self.live:
            print("\r\x1b[K", end="", file=self.err, flush=True)


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


def _json_log(choice: str | None) -> bool:
    return choice == "json"


def _run(config: Config, args: argparse.Namespace) -> int:
    import asyncio

    from .config import keep_checked, parse_duration
    from .lock import state_lock
    from .service import EventLog, Service

    try:
        wait = parse_duration(args.wait)
    except ValueError as exc:
        print(f"civicfeed: --wait: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log = EventLog(json_lines=_json_log(args.log_format), zone=config.tz)
    with (
        _access_log(args, config) as access,
        state_lock(config.state, wait=wait, on_wait=lambda m: log.note("waiting", m)),
    ):
        keep_checked()  # the state's folder is there now (the lock is in it)
        return asyncio.run(Service(config, listen=args.serve, log=log, access_log=access).run())


def _needs_database(config: Config, what: str) -> str | None:
    """Why ``what`` cannot run on this state (a SQLite file), or None."""
    if config.state.url is not None:
        return None
    return (
        f"{what} needs a PostgreSQL state shared by the workers, but the state of "
        f"{config.path} is the SQLite file {config.state}; set `state: postgresql://…` "
        "(civicfeed migrate-state --to postgresql://… copies it), or use `civicfeed run` "
        "alone on one machine"
    )


def _worker(config: Config, args: argparse.Namespace) -> int:
    import asyncio

    from .config import parse_duration
    from .service import EventLog

    refused = _needs_database(config, "run --worker")
    if refused:
        print(f"civicfeed: {refused}", file=sys.stderr)
        return EXIT_USAGE
    stalled = config.worker.stalled_after
    if args.stalled_after is not None:
        try:
            stalled = parse_duration(args.stalled_after)
        except ValueError as exc:
            print(f"civicfeed: --stalled-after: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if stalled < 2:
            print("civicfeed: --stalled-after: at least 2s", file=sys.stderr)
            return EXIT_USAGE
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        print("civicfeed: --jobs: a number from 1 to 256", file=sys.stderr)
        return EXIT_USAGE
    from .workers import run_worker

    log = EventLog(json_lines=_json_log(args.log_format), zone=config.tz)
    with _access_log(args, config) as access:
        return asyncio.run(
            run_worker(
                config,
                log=log,
                stalled_after=stalled,
                concurrency=args.jobs or config.worker.jobs,
                listen=args.serve,
                access_log=access,
            )
        )


def _worker_admin(config: Config, arguments: Sequence[str]) -> int:
    refused = _needs_database(config, "worker-admin")
    if refused:
        print(f"civicfeed: {refused}", file=sys.stderr)
        return EXIT_USAGE
    from .workers import admin

    return admin(config, arguments[1:] if arguments[:1] == ["--"] else arguments)


@contextmanager
def _access_log(args: argparse.Namespace, config: Config) -> Iterator[AccessLog | None]:
    """The access log the options ask for: stderr, a file (appended to), or none."""
    from .accesslog import AccessLog

    json_lines = _json_log(args.log_format)
    if args.no_access_log:
        yield None
        return
    if not args.access_log:
        yield AccessLog(sys.stderr, json_lines, config.tz)
        return
    try:
        out = open(args.access_log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    except OSError as exc:
        raise CivicfeedError(
            f"--access-log: cannot open {args.access_log}: {exc.strerror or exc}"
        ) from exc
    with out:
        yield AccessLog(out, json_lines, config.tz)


def _migrate(config: Config) -> int:
    from contextlib import closing

    from .store import open_store

    with closing(open_store(config.state)) as store:  # migrated on open, under its lock
        version = store.schema_version
    print(f"{config.state}: schema version {version}, up to date")
    return EXIT_OK


def _prune(config: Config) -> int:
    from contextlib import closing

    from .lock import state_lock
    from .store import open_store

    if not config.state.exists():
        print("nothing stored yet: nothing to prune")
        return EXIT_OK
    with state_lock(config.state, wait=600), closing(open_store(config.state)) as store:
        pruned = store.prune([source.id for source in config.sources])
    for source_id, count in sorted(pruned.items()):
        print(f"{source_id}: {count} entries deleted (no longer in {config.path.name})")
    if not pruned:
        print(f"every stored source is in {config.path.name}: nothing to prune")
    return EXIT_OK


def _export(config: Config, folder: Path) -> int:
    from contextlib import closing

    from .store import open_store
    from .write import export_files

    if not config.publishes_to_database:
        print(
            f"civicfeed: export: {config.path.name} publishes to the folder {config.output}/ "
            "(publish_to: folder), not into the database: there is nothing to export; serve "
            "or copy that folder",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not config.state.exists():
        print(f"civicfeed: {config.state} does not exist: nothing to export", file=sys.stderr)
        return EXIT_FAILED
    if folder.exists() and not folder.is_dir():
        print(f"civicfeed: export: {folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    with closing(open_store(config.state, read_only=True)) as store:
        report = export_files(store, folder, store.removed_feeds())
    for error in report.errors:
        print(f"civicfeed: {error}", file=sys.stderr)
    total = len(report.written) + report.unchanged
    line = (
        f"exported {total} file(s) from {config.state} to {folder}: "
        f"{len(report.written)} written, {report.unchanged} unchanged"
    )
    if report.removed:
        line += f"; the files of {len(report.removed)} removed feed(s) deleted"
    if report.errors:
        line += f"; {len(report.errors)} file(s) could not be written"
    print(f"civicfeed: {line}", file=sys.stderr)
    return EXIT_FAILED if report.errors else EXIT_OK


def _migrate_state(config: Config, to: str) -> int:
    from contextlib import closing

    from .lock import state_lock
    from .store import open_store, parse_state
    from .store.copy import copy_state

    try:
        target = parse_state(to)
    except ValueError as exc:
        print(f"civicfeed: --to: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = target.resolved(Path.cwd())
    if not config.state.exists():
        print(f"civicfeed: {config.state} does not exist: nothing to migrate", file=sys.stderr)
        return EXIT_FAILED
    if str(target) == str(config.state):
        print("civicfeed: --to names the state itself", file=sys.stderr)
        return EXIT_USAGE
    with (
        state_lock(config.state, wait=600),
        closing(open_store(config.state)) as source,
        closing(open_store(target)) as into,
    ):
        copied = copy_state(source, into, target_name=str(target))
    print(
        f"copied {copied['entries']} entries of {copied['sources']} sources, "
        f"{copied['published']} published feeds and {copied['archive_pages']} archive pages "
        f"from {config.state} to {target}"
    )
    print(f"now set `state: {to}` in {config.path.name}")
    if not target.is_file and config.publish_to is None:
        print(
            "with a PostgreSQL state the feeds are published into the database (served by "
            "`civicfeed serve`, copied to a folder by `civicfeed export DIR`); to keep "
            f"writing {config.output.name}/, set `publish_to: folder` too"
        )
    return EXIT_OK


def _status(config: Config, *, as_json: bool) -> int:
    import json

    from .refresh import source_status

    rows = source_status(config)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    headers = ("source", "state", "entries", "last success", "next attempt", "last error")
    table = [headers] + [
        (
            r["id"],
            r["state"],
            str(r["entries"]),
            _when(r["last_success"], config),
            _when(r["next_attempt"], config) if r["next_attempt"] else "-",
            f"{_when(r['last_error_at'], config)}: {r['last_error']}" if r["last_error"] else "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return EXIT_OK


def _when(value: str | None, config: Config) -> str:
    from datetime import datetime

    from .clock import for_people

    if not value:
        return "never"
    return for_people(datetime.fromisoformat(value), config.tz)


def _check(config: Config, source_id: str, *, as_json: bool) -> int:
    import asyncio
    import json

    from . import preview
    from .refresh import inspect_source

    try:
        source = config.source(source_id)
    except KeyError:
        print(f"civicfeed: no source with id {source_id!r} in {config.path}", file=sys.stderr)
        return EXIT_USAGE
    inspection = asyncio.run(inspect_source(config, source))
    if as_json:
        print(json.dumps(preview.as_data(inspection), indent=2, ensure_ascii=False))
    else:
        print("\n".join(preview.as_lines(inspection, config.tz)))
    return EXIT_FAILED if inspection.error else EXIT_OK


def _add(config_path: Path, args: argparse.Namespace) -> int:
    import asyncio

    from . import preview
    from .addsource import add_source

    result = asyncio.run(
        add_source(
            config_path,
            args.url,
            source_id=args.source_id,
            title=args.title,
            dry_run=args.dry_run,
        )
    )
    for reason in result.proposal.reasons:
        print(f"  {reason}")
    print("\n".join(preview.as_lines(result.inspection, result.config.tz)))
    source = result.proposal.source["id"]
    print(f"{config_path} gains:")
    print(result.added)
    if args.dry_run:
        print(f"dry run: {config_path} is unchanged; it would gain the source {source!r}")
    else:
        print(f"added the source {source!r} to {config_path}; `civicfeed refresh` reads it")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
