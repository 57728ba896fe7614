"""sources.yaml: loading, validation and the resolved configuration.

PyYAML gives the data and the line of every node; pydantic validates every key (schema.py),
so an error names the file, the line and the key. Relative paths are resolved against the
config file. What validation gives, and every stage takes, is the configuration's plain
records (Config and its parts, below): no stage sees a validation library.

Reading the YAML and the checks made on the file as written cost more than the validation
(some 0.3 s for 1,000 sources). With ``checked=True`` (the refresh and run commands) a file
that passed them is remembered in the default state folder beside it
(``.civicfeed/<file name>.checked.json``, when that folder exists, or once the command made
it for a new state in it, see keep_checked): the data it gave, under a digest of the file's
bytes, its resolved path and this module's code. A file with that digest is validated again
from the remembered data, without reading the YAML; any other file, or any problem, is read
in full as always, so an error still names file, line and key.

Validating 1,000 sources again, and importing pydantic for it (more CPU than all the other
imports of a refresh together), cost more still on every run. So the configuration that
passed is kept too, its records pickled (``.civicfeed/<file name>.config.pickle``), under a
digest of the same and of the code of everything the validation calls and pydantic's
version; it is read back only when that digest is the file's, without importing pydantic,
and unpickled with nothing but the classes of a configuration allowed (no other object, no
function, can be made from it). The configuration reads no environment variable and includes
no other file: its bytes and its path are all it depends on. Both files are replaced whole
(written beside, then renamed), so a run killed while writing, or two runs at once, leave the
one or the other, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from .errors import ConfigError
from .store.location import StateLocation
from .xmlsafe import is_xml_safe, strip_controls

# PyYAML and pydantic (schema.py) are imported when a file is read (parse_config), not at
# import: a configuration kept from a file that passed (see the module's description) is read
# back without them
if TYPE_CHECKING:
    import yaml
    from pydantic import ValidationError

__all__ = [
    "Aggregate",
    "Config",
    "HtmlRules",
    "Source",
    "json_fields",
    "keep_checked",
    "load_config",
    "parse_duration",
    "parse_size",
    "parse_window",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
# what an id may be (source and aggregate ids name files: see schema.py)
ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
MAX_DURATION = 365 * 86400.0  # a year: longer is a mistake, and overflows the scheduler
# ids whose files would collide with what else the output folder holds or the server answers:
# index.html, feeds.opml, feed.xsl, archive/ (publish.py, render/) and /healthz (server.py)
RESERVED_IDS = frozenset({"index", "feeds", "feed", "archive", "healthz"})
# before anything is built from the file: how deep blocks may nest, and how many values the
# file may hold once every alias (*name) is expanded (an "alias bomb" holds billions)
MAX_DEPTH = 32
MAX_VALUES = 200_000


def parse_duration(value: object) -> float:
    """'500ms', '20s', '30m', '1h', '2d' -> seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            if seconds > MAX_DURATION:
                raise ValueError(f"{value!r} is longer than a year; write at most 365d")
            if seconds > 0:
                return seconds
    raise ValueError(f"{value!r} is not a duration; write e.g. 500ms, 20s, 30m, 1h or 2d")


def parse_size(value: object) -> int:
    """'10MB', '512KiB', 1000000 -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
            if size > 0:
                return size
    raise ValueError(f"{value!r} is not a size; write e.g. 500KB, 10MB or 1GiB")


def parse_window(value: object) -> float:
    """A duration, or 0 (the same calendar day only)."""
    if value in (0, "0"):
        return 0.0
    return parse_duration(value)


# --- the configuration's records ------------------------------------------------------------
#
# What validation gives (schema.py validates a file's data against models of the same names,
# fields and defaults) and what every stage takes: plain frozen records, which a remembered
# configuration is pickled as, so that reading it back imports no validation library.

DateOrder = Literal["dmy", "mdy"]
DEFAULT_STATE = StateLocation.sqlite(Path(".civicfeed/state.db"))


@dataclass(frozen=True, kw_only=True)
class HtmlRules:
    """How to read an HTML listing. Selectors inside an item are relative to it."""

    item: str | None = None  # None: the items are detected automatically
    title: str | None = None
    date: str | None = None
    link: str | None = None
    summary: str | None = None
    # a regular expression removed from every title, e.g. "mehr zur Meldung:"
    title_remove: str | None = None
    # When an item has no date on the listing, its detail page (the item's link) is
    # fetched once and this selector's text is read for a date; "auto": the page's main text.
    detail_date: str | None = None


@dataclass(frozen=True, kw_only=True)
class Source:
    id: str
    # None: the feed's own title, else the page's <title>, else the host (see publish.py)
    title: str | None = None
    url: str
    description: str | None = None
    home: str | None = None  # the human page a feed source stands for; default: url
    tags: tuple[str, ...] = ()
    html: HtmlRules | None = None  # None: a feed; ``html: auto`` in the file: HtmlRules()
    timeout: float = 20.0  # seconds
    max_bytes: int = 10 * 10**6
    every: float = 1800.0  # seconds
    cron: str | None = None  # a crontab line for `civicfeed run`; instead of `every`
    max_entries: int = 100
    # the language of its feed (RSS <language>, Atom xml:lang, JSON Feed language); None: the
    # language a feed source declares, else the top-level language
    language: str | None = None
    # numeric dates with slashes: day first (11/2/2026), or "mdy", month first (2/11/2026);
    # None: the top-level date_order
    date_order: DateOrder | None = None
    # full text: every entry's detail page (its link) is read once for the article itself
    follow: bool = False
    content: str | None = None  # the article's element; default: main-content extraction
    follow_hosts: tuple[str, ...] = ()  # hosts besides the source's own whose links are followed

    @property
    def kind(self) -> str:
        return "html" if self.html is not None else "feed"


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    id: str
    title: str
    description: str | None = None
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    max_entries: int = 100
    language: str | None = None  # None: the top-level language


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """`civicfeed run --worker` (workers.py); its command-line options override these."""

    # the jobs of a worker without a heartbeat for this long are run again by the others
    stalled_after: float = 60.0
    # jobs at once (default: concurrency, at most 16)
    jobs: int | None = None


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole resolved configuration. Paths are absolute."""

    path: Path
    title: str = "Meldungen als Feeds"  # the index page's title
    language: str = "de"  # of every feed that has none of its own
    websub_hub: str | None = None  # a WebSub hub to declare in the feeds and to ping
    timezone: str = "UTC"
    output: Path = Path("feeds")
    # a SQLite file (a path or sqlite:///PATH) or a PostgreSQL database (postgresql://…)
    state: StateLocation = DEFAULT_STATE
    # where the published files go: the output folder, or the state database (served by
    # `civicfeed serve`, copied out by `civicfeed export`); default: the folder with a SQLite
    # state, the database with a PostgreSQL one
    publish_to: Literal["folder", "database"] | None = None
    base_url: str | None = None
    concurrency: int = 128
    per_host: int = 2
    # how far apart two sources' copies of one story may be dated (seconds; 0: the same day)
    dedup_window: float = 86400.0
    date_order: DateOrder = "dmy"  # for sources that do not set their own
    # behind a reverse proxy: take the public scheme and host from X-Forwarded-Proto/-Host
    trust_proxy: bool = False
    # /healthz answers 503 when the last refresh ended longer ago; default 3 × shortest every
    stale_after: float | None = None
    # hosts that may be fetched although they resolve to internal addresses (see netpolicy.py)
    allow_hosts: tuple[str, ...] = ()
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    sources: tuple[Source, ...]
    feeds: tuple[Aggregate, ...] = ()

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """The hosts the operator named: sources' URLs and follow_hosts, the WebSub hub and
        allow_hosts."""
        from .netpolicy import trusted_hosts

        named = [*self.allow_hosts, *(host for s in self.sources for host in s.follow_hosts)]
        return trusted_hosts([s.url for s in self.sources] + [self.websub_hub], named)

    @property
    def stale_limit(self) -> float:
        """Seconds after which the last refresh is too old for /healthz."""
        if self.stale_after is not None:
            return self.stale_after
        return 3 * min(source.every for source in self.sources)

    @property
    def publishes_to_database(self) -> bool:
        """Whether the published files are kept in the state database (``publish_to``)."""
        if self.publish_to is not None:
            return self.publish_to == "database"
        return not self.state.is_file

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def date_order_of(self, source: Source) -> str:
        return source.date_order or self.date_order

    def members(self, aggregate: Aggregate) -> tuple[Source, ...]:
        """The aggregate's sources in priority order: listed sources first, then by tag."""
        chosen = [self.source(sid) for sid in aggregate.sources]
        taken = {source.id for source in chosen}  # ids are unique: no model comparisons
        tags = set(aggregate.tags)
        for source in self.sources:
            if source.id not in taken and tags.intersection(source.tags):
                chosen.append(source)
                taken.add(source.id)
        return tuple(chosen)


# the records a configuration is made of (what a kept configuration may hold: _KEPT_CLASSES)
_RECORDS = (HtmlRules, Source, Aggregate, WorkerSettings, Config)


# --- loading -------------------------------------------------------------------------------

_TOP_KEYS = {
    "language",
    "timezone",
    "output",
    "state",
    "publish_to",
    "base_url",
    "title",
    "websub_hub",
    "defaults",
    "sources",
    "feeds",
    "concurrency",
    "per_host",
    "dedup_window",
    "date_order",
    "trust_proxy",
    "stale_after",
    "allow_hosts",
    "worker",
}
_NOT_DEFAULTABLE = {"id", "title", "url", "description", "home"}


MAX_PROBLEMS = 20  # reported at once; the rest are counted


class _Problems:
    """The mistakes found in one file, each with its line and key, reported together."""

    def __init__(self, where: str, root: yaml.Node | None) -> None:
        self.where, self.root = where, root
        self.found: list[ConfigError] = []
        # missing keys that a misspelt key beside them already explains
        self.explained: set[tuple[Any, ...]] = set()

    def add(
        self,
        message: str,
        loc: Sequence[Any] = (),
        *,
        key_line: bool = False,
        line_of: Sequence[Any] | None = None,
    ) -> None:
        """A problem at ``loc`` (the path of keys and list positions, as in the file), on the
        line of its key (``key_line``), of its value, or of ``line_of``."""
        self.found.append(
            ConfigError(
                message,
                path=self.where,
                line=_line(self.root, loc if line_of is None else line_of, key_line=key_line),
                key=_dotted(loc) or None,
            )
        )

    def raise_any(self) -> None:
        if not self.found:
            return
        found = sorted(self.found, key=lambda p: p.line or 0)
        raise ConfigError.of(found[:MAX_PROBLEMS], omitted=max(0, len(found) - MAX_PROBLEMS))


def json_fields(record: object, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The fields of ``record`` (a configuration's part) but ``exclude``, as JSON data: what
    pydantic's ``model_dump(mode="json", exclude=exclude)`` of its model gives (stored
    digests of a source's settings are made from it, tests/test_config.py holds the two
    equal)."""
    return {
        part.name: _plain(getattr(record, part.name))
        for part in fields(record)  # type: ignore[arg-type]
        if part.name not in exclude
    }


def field_names(record: type[Any]) -> set[str]:
    """The keys a block of the file may hold: its record's fields."""
    return {part.name for part in fields(record)}


def _plain(value: object) -> Any:
    """A value as JSON data, as ``model_dump(mode="json")`` gives it: text, numbers, true,
    false and null as they are, a tuple as a list, a path as its text, a record as the
    mapping of its fields; TypeError for any other kind."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if type(value) is tuple:
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if type(value) in _RECORDS:
        return json_fields(value)
    raise TypeError(f"{type(value).__name__} is not plain data")


def load_config(path: str | Path, *, checked: bool = False) -> Config:
    """Read and validate sources.yaml; raise ConfigError naming file, line and key of every
    problem found. ``checked``: remember a file that passed, and validate a remembered file
    again from its data without reading the YAML (see the module's description)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"file not found (working directory: {Path.cwd()}); name the configuration file "
            "with --config FILE or the environment variable $CIVICFEED_CONFIG",
            path=str(path),
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a folder: name the file in it", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"is not UTF-8 text (byte {exc.start}); save it as UTF-8", path=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if not checked:
        return parse_config(text, path)
    memo = _Checked(text, path)
    return memo.validated() or memo.config() or parse_config(text, path, remember=memo.remember)


# the state folder a configuration's state is in unless it says otherwise (see Config.state)
_STATE_FOLDER = ".civicfeed"


class _Checked:
    """The remembered data of a file that passed the checks (see the module's description)."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        resolved = path.resolve()
        self.file = resolved.parent / _STATE_FOLDER / f"{resolved.name}.checked.json"
        digest = hashlib.sha256()
        for part in (_code_digest(), _yaml_version(), str(resolved), text):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        self.key = digest.hexdigest()
        self.pickled = resolved.parent / _STATE_FOLDER / f"{resolved.name}.config.pickle"
        digest.update(_validation_digest().encode())
        self.pickled_key = digest.hexdigest().encode()

    def validated(self) -> Config | None:
        """The configuration kept for this file, as it passed; None when there is none for
        this digest, or it cannot be read back as one (the file is then read again)."""
        try:
            with open(self.pickled, "rb") as kept:
                if kept.readline().rstrip(b"\n") != self.pickled_key:
                    return None
                config = _ConfigUnpickler(io.BytesIO(kept.read())).load()
        except Exception:  # damaged, cut short, or not ours: read the file
            return None
        if not isinstance(config, Config) or config.path != self.path.resolve():
            return None
        return config

    def config(self) -> Config | None:
        """The configuration from the remembered data, validated; None when there is none
        for this file or it does not pass now (the file is then read in full)."""
        try:
            stored = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("key") != self.key:
            return None
        raw = stored.get("raw")
        if not isinstance(raw, dict):
            return None
        problems = _Problems(str(self.path), None)
        try:
            return _validated(raw, {}, self.path, problems)
        except ConfigError:
            return None

    def remember(self, raw: dict[str, Any], config: Config) -> None:
        """Keep the data of a file that passed, when it comes back from JSON as it is (other
        YAML types, such as dates, are not kept), and the configuration it gave: now when
        the state folder is there; when the configuration's state is to be in it (a new
        state), once the command has made it (keep_checked), never making it itself, so that
        a command refused, or a state elsewhere, leaves no folder behind."""
        if self.file.parent.is_dir():
            self._keep(raw, config)
            return
        state = config.state.path
        if state is not None and state.resolve().is_relative_to(self.file.parent):
            _KEPT_LATER[self.file] = lambda: self._keep(raw, config)  # the file's latest

    def _keep(self, raw: dict[str, Any], config: Config) -> None:
        if not self.file.parent.is_dir():
            return
        data = {k: v for k, v in raw.items() if k != "path"}
        try:
            text = json.dumps({"key": self.key, "raw": data}, ensure_ascii=False)
            if json.loads(text)["raw"] != data:
                return
        except (TypeError, ValueError):
            return
        _replace(self.file, text.encode("utf-8"))
        try:
            pickled = pickle.dumps(config, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):  # pragma: no cover
            return
        _replace(self.pickled, self.pickled_key + b"\n" + pickled)


# what files that passed leave to keep once their state folder is made (see keep_checked),
# by the file they are kept in: the last one loaded of each
_KEPT_LATER: dict[Path, Callable[[], None]] = {}


def keep_checked() -> None:
    """Keep the files that passed whose state folder did not exist when they were loaded
    (``load_config(checked=True)`` of a new state): for the command that has made it (a
    refresh, once it ran), so that its next run does not read and validate the file again."""
    while _KEPT_LATER:
        _KEPT_LATER.pop(next(iter(_KEPT_LATER)))()


def _replace(path: Path, content: bytes) -> None:
    """``path`` holding ``content``, written beside it and renamed: whole or not at all.
    Readable by the owner only: the file may hold a database password. Not kept when it
    cannot be written: the next run reads the file in full."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


# what a kept configuration may be made of (its own classes, paths; the rest is plain data)
_KEPT_CLASSES = {
    *((record.__module__, record.__name__) for record in (*_RECORDS, StateLocation)),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
}


class _ConfigUnpickler(pickle.Unpickler):
    """Unpickles a kept configuration and nothing else: any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _KEPT_CLASSES:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a configuration")
        return super().find_class(module, name)


_CODE: list[str] = []


def _yaml_version() -> str:
    """What stands for PyYAML's version in the digest of a file's remembered data: a digest
    of its package's ``__init__.py``, which holds ``__version__``."""
    return _package_file_digest("yaml", "__init__.py")


def _code_digest() -> str:
    """A digest of this module's code: what the remembered data went through."""
    if not _CODE:
        _CODE.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return _CODE[0]


# the modules whose code the validation calls besides this one (the schema, state,
# selectors, crontab lines, control characters)
_VALIDATION_MODULES = (
    "schema.py",
    "store/location.py",
    "css.py",
    "scheduler.py",
    "xmlsafe.py",
    "errors.py",
)


def _validation_digest() -> str:
    """A digest of what a kept configuration depends on besides the file: the code of the
    modules the validation calls, pydantic's version and Python's."""
    digest = hashlib.sha256(f"{_package_file_digest('pydantic', 'version.py')}\0".encode())
    digest.update(f"{sys.version}\0".encode())
    package = Path(__file__).parent
    for name in _VALIDATION_MODULES:
        digest.update(hashlib.sha256((package / name).read_bytes()).digest())
    return digest.hexdigest()


def _package_file_digest(package: str, name: str) -> str:
    """A digest of a file of an installed package, found without importing the package
    (pydantic's import costs more than a whole unchanged refresh's other imports); what
    stands for its version where that file holds the version."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return ""
    try:
        return hashlib.sha256((Path(spec.origin).parent / name).read_bytes()).hexdigest()
    except OSError:
        return ""


def parse_config(
    text: str, path: Path, *, remember: Callable[[dict[str, Any], Config], None] | None = None
) -> Config:
    """``remember``: called with the file's data and its configuration once it passed every
    check."""
    import yaml

    where = str(path)
    _check_shape(text, where)
    try:
        root, data = _load(text, _fast_loader())
    except yaml.YAMLError:  # worded, with its line, as the pure-Python loader says it
        try:
            root, data = _load(text, yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise _yaml_problem(exc, where) from None
    problems = _Problems(where, root)
    if root is not None:
        _duplicate_keys(root, problems)
    if not isinstance(data, dict):
        problems.add("the file must be a block of keys with at least 'sources:'")
        problems.raise_any()
    raw, origin = _merge_defaults(data, problems)
    _check_raw(data, problems)
    config = _validated(raw, origin, path, problems)
    if remember is not None:
        remember(raw, config)
    return config


def _validated(
    raw: dict[str, Any],
    origin: dict[tuple[Any, ...], tuple[Any, ...]],
    path: Path,
    problems: _Problems,
) -> Config:
    """The configuration of a file's data (defaults merged), validated and cross-checked."""
    from . import schema

    base = path.resolve().parent
    raw = {**raw, "path": path.resolve()}
    try:
        config = schema.validate(raw)
    except schema.ValidationError as exc:
        _translate(exc, origin, problems)
        problems.raise_any()
        raise AssertionError("a validation error was not translated") from exc  # pragma: no cover
    problems.raise_any()
    config = replace(config, output=base / config.output, state=config.state.resolved(base))
    _cross_check(config, problems)
    problems.raise_any()
    return config


# PyYAML's problems, in words that say what to change
_YAML_PROBLEMS = (
    ("found character '\\t'", "a tab character: indent with spaces, never tabs"),
    (
        "mapping values are not allowed here",
        "a ':' where no key can start: check the indentation of this line against the one "
        "above, or put a value containing ': ' in quotes",
    ),
    (
        "expected <block end>",
        "this line's indentation does not match the block it belongs to",
    ),
    (
        "did not find expected key",
        "this line's indentation does not match the block it belongs to",
    ),
    (
        "did not find expected '-' indicator",
        "this list item's indentation does not match the items above it",
    ),
    ("found undefined alias", "an alias (*name) with no anchor (&name) above it"),
    (
        "found unexpected end of stream",
        "the file ends inside a quoted text or a bracket: close it",
    ),
    ("flow sequence", "a '[' list is not closed with ']'"),
    ("found '<stream end>'", "the file ends inside a '[' list or a '{' block: close it"),
    ("flow mapping", "a '{' block is not closed with '}'"),
    ("found unknown escape character", 'an unknown backslash escape in a "double-quoted" text'),
)


def _yaml_problem(exc: yaml.YAMLError, where: str) -> ConfigError:
    """A YAML syntax error as one line with the line and column where it was noticed."""
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or "")
    context = str(getattr(exc, "context", None) or "")
    said = f"{context} {problem}"
    message = next((words for known, words in _YAML_PROBLEMS if known in said), None)
    if message is None:
        message = f"this is not valid YAML here ({problem or 'unreadable'})"
    return ConfigError(
        f"YAML syntax error: {message}",
        path=where,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


def _merge_defaults(
    data: dict[str, Any], problems: _Problems
) -> tuple[dict[str, Any], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Apply ``defaults`` to every source; remember which keys came from there."""
    raw = {k: v for k, v in data.items() if k != "defaults"}
    absent = [key for key in ("sources",) if key not in data]
    for key in data:
        if key not in _TOP_KEYS:
            message = _unknown(str(key), _TOP_KEYS, absent)
            problems.explained.update((name,) for name in absent if f"{name!r}?" in message)
            problems.add(message, (key,), key_line=True)
            raw.pop(key, None)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.add(
            "must be a block of source keys (such as 'every: 30m' on the next line, indented)",
            ("defaults",),
        )
        defaults = {}
    allowed = field_names(Source) - _NOT_DEFAULTABLE
    for key in list(defaults):
        if key not in allowed:
            reason = (
                "is set per source only"
                if key in _NOT_DEFAULTABLE
                else _unknown(str(key), allowed, ())
            )
            problems.add(reason, ("defaults", key), key_line=True)
    defaults = {k: v for k, v in defaults.items() if k in allowed}
    origin: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    sources = data.get("sources")
    if isinstance(sources, list):
        merged = []
        for index, source in enumerate(sources):
            if isinstance(source, dict):
                for key in defaults:
                    if key not in source:
                        origin[("sources", index, key)] = ("defaults", key)
                source = {**defaults, **source}
            merged.append(source)
        raw["sources"] = merged
    return raw, origin


def _check_raw(data: dict[str, Any], problems: _Problems) -> None:
    """Mistakes the validation below would accept silently, checked on the file as written."""
    blocks: list[tuple[tuple[Any, ...], Any]] = [(("defaults",), data.get("defaults"))]
    sources = data.get("sources")
    if isinstance(sources, list):
        blocks += [(("sources", i), source) for i, source in enumerate(sources)]
    for loc, text in _strings(data, ()):
        if not is_xml_safe(text):
            bad = next(c for c in text if not is_xml_safe(c))
            problems.add(
                f"holds the control character U+{ord(bad):04X}, which no feed can carry; remove it",
                loc,
            )
    for loc, block in blocks:
        if not isinstance(block, dict):
            continue
        if "every" in block and "cron" in block:
            problems.add(
                "'every' and 'cron' are both set: remove one (every: a fixed interval such as "
                '30m; cron: a crontab line such as "*/15 6-22 * * *")',
                (*loc, "cron"),
                key_line=True,
            )
        if "html" in block and block["html"] is None:
            problems.add(
                "is empty: give the selectors on the lines below it (indented: item, title, "
                "date, link), write 'html: auto' to find the items automatically, or remove "
                "'html:' if the source is an RSS or Atom feed",
                (*loc, "html"),
                key_line=True,
            )


# the keys a block may hold, by where it is in the file
def _allowed(loc: Sequence[Any]) -> set[str]:
    names = [p for p in loc if isinstance(p, str)]
    if names == ["sources"]:
        return field_names(Source)
    if names == ["sources", "html"]:
        return field_names(HtmlRules)
    if names == ["feeds"]:
        return field_names(Aggregate)
    if names == ["defaults"]:
        return field_names(Source) - _NOT_DEFAULTABLE
    return set()


def _unknown(key: str, allowed: Iterable[str], missing: Iterable[str]) -> str:
    """'unknown key', with the likely spelling: a missing key first, else any allowed one."""
    import difflib

    for pool in (list(missing), sorted(allowed)):
        close = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key (allowed here: {', '.join(sorted(allowed))})"


_BLOCKS = {
    "HtmlRules": (
        "must be a block of selectors (item, title, date, link, summary, ...) on the lines "
        "below, indented, or 'auto' to find the items automatically"
    ),
    "Source": "must be a block of keys (id, title, url, ...), not a single value",
    "Aggregate": "must be a block of keys (id, title, sources or tags), not a single value",
}


def _shown(value: object) -> str:
    """What was found, as the file's reader would call it."""
    if isinstance(value, str | int | float | bool):
        return repr(value)
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a block of keys"
    if isinstance(value, list | tuple):
        return "a list"
    return "this value"


_LISTS_OF_BLOCKS = {
    ("sources",): "a list of sources, each starting with '- id: ...' on a line of its own",
    ("feeds",): "a list of aggregates, each starting with '- id: ...' on a line of its own",
}


def _words(error: Mapping[str, Any], loc: tuple[Any, ...] = ()) -> str:
    """A validation error in our words: what is wrong and how to write it instead."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    shown = _shown(value)
    if kind == "missing":
        return "missing required key"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        block = _BLOCKS.get(str(ctx.get("class_name")), "must be a block of keys")
        return f"{block}; found {shown}"
    if kind in ("tuple_type", "list_type") and loc in _LISTS_OF_BLOCKS:
        return f"must be {_LISTS_OF_BLOCKS[loc]}; found {shown}"
    if kind in ("tuple_type", "list_type"):
        example = f"[{value}]" if isinstance(value, str) and value else "[a, b]"
        return f"must be a list, e.g. {example}; found {shown}"
    if kind in ("string_type", "str_type"):
        return f"must be text; found {shown}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number; found {shown}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number; found {shown}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false; found {shown}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"must be at least {bound}; found {shown}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"must be at most {bound}; found {shown}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}; found {shown}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "needs at least one entry"
    if kind == "too_long":
        return f"holds too many entries (at most {ctx.get('max_length')})"
    return f"{shown} is not valid here"


def _translate(
    exc: ValidationError,
    origin: Mapping[tuple[Any, ...], tuple[Any, ...]],
    problems: _Problems,
) -> None:
    errors = []
    for error in exc.errors():
        if error["type"] == "too_short" and error.get("input"):
            continue  # the list is not empty: its items are invalid, and reported as such
        loc = tuple(error["loc"])
        # pydantic names the chosen union branch in the path ("function-after[...]"); drop it
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        for length in range(len(loc), 0, -1):
            if loc[:length] in origin:
                loc = origin[loc[:length]] + loc[length:]
                break
        errors.append((loc, error))
    # a misspelt key explains the missing one beside it: report it once, with the spelling
    missing = {loc: loc[-1] for loc, e in errors if e["type"] == "missing" and loc}
    explained = problems.explained
    for loc, error in errors:
        if error["type"] == "extra_forbidden":
            parent = loc[:-1]
            near = [str(name) for place, name in missing.items() if place[:-1] == parent]
            message = _unknown(str(loc[-1]), _allowed(parent), near)
            guessed = message.split("'")[1] if "did you mean" in message else None
            if guessed in near:
                explained.add((*parent, guessed))
            problems.add(message, loc, key_line=True)
    for loc, error in errors:
        if error["type"] == "extra_forbidden" or loc in explained:
            continue
        # a missing key is reported on the line its block starts
        problems.add(
            _words(error, loc), loc, line_of=loc[:-1] if error["type"] == "missing" else None
        )


def _strings(value: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every text in the file (keys too), with where it is."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, (*loc, key))
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


# libyaml's loader where PyYAML was built with it: some ten times faster. Its nodes carry the
# same line numbers; on any problem the pure-Python loader reads the file again, so that every
# message (and a problem's position) is the one it gives.
def _fast_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, in one pass."""
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def _check_shape(text: str, where: str) -> None:
    """Refuse, before anything is built, a file nested deeper than MAX_DEPTH, one that holds
    more than MAX_VALUES values with its aliases expanded, and a raw control character.
    YAML syntax errors are left to the loader, which words them."""
    import yaml

    try:
        _scan(text, where, None, _fast_loader())
        return
    except yaml.YAMLError:
        pass  # looked at again below by the pure-Python loader, which words it
    try:
        _scan(text, where, None)
    except yaml.reader.ReaderError as exc:  # a raw control character: find its key
        position = exc.position
        cleaned = "".join(" " if not is_xml_safe(c) else c for c in text)
        if strip_controls(text) == text:  # not ours (a byte-order mark in the middle, ...)
            return
        loc = _scan(cleaned, where, position)
        line = text.count("\n", 0, position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a character"
        raise ConfigError(
            f"holds the control character {char}, which no feed can carry; remove it",
            path=where,
            line=line,
            key=_dotted(loc or ()) or None,
        ) from None
    except yaml.YAMLError:
        return


class _Frame:
    __slots__ = ("anchor", "awaiting_key", "is_key", "key", "mapping", "size")

    def __init__(self, mapping: bool, anchor: str | None, is_key: bool) -> None:
        self.mapping, self.anchor, self.is_key = mapping, anchor, is_key
        self.key: Any = 0  # the current key, or the position in a list
        self.awaiting_key = mapping
        self.size = 1


def _scan(text: str, where: str, target: int | None, loader: Any = None) -> tuple[Any, ...] | None:
    """Walk the file's YAML events once, building nothing; the path of the scalar at
    ``target`` (a character position), if asked; ``loader``: the pure-Python one unless
    named."""
    import yaml

    loader = loader or yaml.SafeLoader
    anchors: dict[str, int] = {}
    frames: list[_Frame] = []
    total = 0

    def refuse(message: str, line: int) -> ConfigError:
        key = _dotted(tuple(frame.key for frame in frames[:3]))
        key += "…" if len(frames) > 3 else ""
        return ConfigError(message, path=where, line=line, key=key or None)

    for event in yaml.parse(text, Loader=loader):
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            continue
        mark = event.start_mark
        line = mark.line + 1 if mark else 0
        parent = frames[-1] if frames else None
        if isinstance(event, yaml.CollectionEndEvent):
            frame = frames.pop()
            if frame.anchor:
                anchors[frame.anchor] = frame.size
            size, is_key, parent = frame.size, frame.is_key, frames[-1] if frames else None
        else:
            is_key = parent is not None and parent.mapping and parent.awaiting_key
            size = anchors.get(event.anchor or "", 1) if isinstance(event, yaml.AliasEvent) else 1
            total += size
            if total > MAX_VALUES:
                raise refuse(
                    f"the file holds more than {MAX_VALUES} values once its aliases (*name) "
                    "are expanded; refused (aliases of aliases make an 'alias bomb')",
                    line,
                )
            if isinstance(event, yaml.ScalarEvent):
                end = event.end_mark
                if target is not None and mark and end and mark.index <= target < end.index:
                    path = tuple(frame.key for frame in frames)
                    return (*path, event.value) if is_key else path
                if event.anchor:
                    anchors[event.anchor] = 1
            if is_key and parent is not None:
                parent.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                parent.awaiting_key = False
            if isinstance(event, yaml.CollectionStartEvent):
                if len(frames) >= MAX_DEPTH:
                    raise refuse(f"blocks and lists nest more than {MAX_DEPTH} deep; refused", line)
                mapping = isinstance(event, yaml.MappingStartEvent)
                frames.append(_Frame(mapping, event.anchor, is_key))
                continue
        # a node is complete: count it in its parent, and move the parent on
        if parent is not None:
            parent.size += size
            if parent.mapping:
                parent.awaiting_key = parent.awaiting_key or not is_key
            else:
                parent.key += 1
    return None


def _cross_check(config: Config, problems: _Problems) -> None:
    def fail(message: str, loc: tuple[Any, ...]) -> None:
        problems.add(message, loc)

    ids = [("sources", i, s.id) for i, s in enumerate(config.sources)]
    ids += [("feeds", i, f.id) for i, f in enumerate(config.feeds)]
    for kind, index, name in ids:
        if name in RESERVED_IDS:
            fail(
                f"{name!r} is reserved (the output folder holds index.html, feeds.opml, "
                "feed.xsl and archive/; the server answers /healthz): choose another id",
                (kind, index, "id"),
            )

    if config.state.path and config.state.path.resolve().is_relative_to(config.output.resolve()):
        fail("the state file must not be inside the output folder, which is published", ("state",))
    if config.websub_hub and not config.base_url:
        fail("websub_hub needs base_url: the hub is told the feeds' public URLs", ("websub_hub",))
    seen: set[str] = set()
    for index, source in enumerate(config.sources):
        if source.id in seen:
            fail(f"duplicate source id {source.id!r}", ("sources", index, "id"))
        seen.add(source.id)
    tags = {tag for source in config.sources for tag in source.tags}
    feed_ids: set[str] = set()
    for index, feed in enumerate(config.feeds):
        if feed.id in seen:
            fail(
                f"aggregate id {feed.id!r} is already a source id (both would write {feed.id}.rss)",
                ("feeds", index, "id"),
            )
        if feed.id in feed_ids:
            fail(f"duplicate aggregate id {feed.id!r}", ("feeds", index, "id"))
        feed_ids.add(feed.id)
        for pos, name in enumerate(feed.sources):
            if name not in seen:
                fail(f"unknown source {name!r}", ("feeds", index, "sources", pos))
        for pos, tag in enumerate(feed.tags):
            if tag not in tags:
                fail(f"no source has the tag {tag!r}", ("feeds", index, "tags", pos))


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of ``part`` inside ``node``."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part or key.value == str(part):
                return key, value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part], node.value[part]
    return None


def _line(root: yaml.Node | None, loc: Sequence[Any], *, key_line: bool = False) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the document."""
    node = root
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        key, node = found
        line = (key if key_line else node).start_mark.line + 1
    return line


def _duplicate_keys(node: yaml.Node, problems: _Problems) -> None:
    import yaml

    for child in _walk(node):
        if isinstance(child, yaml.MappingNode):
            seen: set[str] = set()
            for key, _ in child.value:
                if key.value in seen:
                    problems.found.append(
                        ConfigError(
                            "duplicate key: it is given twice in this block; keep one",
                            path=problems.where,
                            line=key.start_mark.line + 1,
                            key=str(key.value),
                        )
                    )
                seen.add(key.value)


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    """Every node under ``node``, itself first, each before what it holds, in the file's order."""
    import yaml

    waiting = [node]
    while waiting:
        node = waiting.pop()
        yield node
        if isinstance(node, yaml.MappingNode):
            waiting.extend(part for pair in reversed(node.value) for part in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            waiting.extend(reversed(node.value))
