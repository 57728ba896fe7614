"""sources.yaml: loading, validation and the resolved configuration.

PyYAML gives the data and the line of every node; pydantic validates every key, so an error
names the file, the line and the key. Relative paths are resolved against the config file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "Aggregate",
    "Config",
    "HtmlRules",
    "Source",
    "load_config",
    "parse_duration",
    "parse_size",
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
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def parse_duration(value: object) -> float:
    """'500ms', '20s', '30m', '1h', '2d' -> seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
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


def _check_selector(value: str | None) -> str | None:
    if value is None:
        return None
    from .extract.html import compile_selector  # the one place that knows CSS

    compile_selector(value)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Selector = Annotated[str, AfterValidator(_check_selector)]
OptionalSelector = Annotated[str | None, AfterValidator(_check_selector)]


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not a valid id: use lower-case letters, digits and '-'")
    return value


Ident = Annotated[str, AfterValidator(_check_id)]


def _auto_html(value: object) -> object:
    """``html: auto`` is an HTML listing whose items are found automatically."""
    if value == "auto":
        return {}
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class HtmlRules(_Strict):
    """How to read an HTML listing. Selectors inside an item are relative to it."""

    item: OptionalSelector = None  # None: the items are detected automatically
    title: OptionalSelector = None
    date: OptionalSelector = None
    link: OptionalSelector = None
    summary: OptionalSelector = None
    # a regular expression removed from every title, e.g. "mehr zur Meldung:"
    title_remove: str | None = None
    # When an item has no date on the listing, its detail page (the item's link) is
    # fetched once and this selector's text is read for a date; "auto": the page's main text.
    detail_date: OptionalSelector = None

    @field_validator("title_remove")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
        return value


class Source(_Strict):
    id: Ident
    title: str = Field(min_length=1)
    url: str
    description: str | None = None
    home: str | None = None  # the human page a feed source stands for; default: url
    tags: tuple[str, ...] = ()
    html: Annotated[HtmlRules | None, BeforeValidator(_auto_html)] = None
    timeout: Duration = 20.0
    max_bytes: Size = 10 * 10**6
    every: Duration = 1800.0
    cron: str | None = None  # a crontab line for `civicfeed run`; instead of `every`
    max_entries: int = Field(default=100, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from .scheduler import check_cron  # the one place that knows crontab syntax

        return check_cron(value)

    @field_validator("url", "home")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @property
    def kind(self) -> str:
        return "html" if self.html is not None else "feed"


class Aggregate(_Strict):
    id: Ident
    title: str = Field(min_length=1)
    description: str | None = None
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    max_entries: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _needs_members(self) -> Aggregate:
        if not self.sources and not self.tags:
            raise ValueError("an aggregate needs 'sources' or 'tags'")
        return self


class Config(_Strict):
    """The whole resolved configuration. Paths are absolute."""

    path: Path
    title: str = Field(default="Meldungen als Feeds", min_length=1)  # the index page's title
    websub_hub: str | None = None  # a WebSub hub to declare in the feeds and to ping
    timezone: str = "UTC"
    output: Path = Path("feeds")
    state: Path = Path(".civicfeed/state.db")
    base_url: str | None = None
    concurrency: int = Field(default=16, ge=1, le=256)
    per_host: int = Field(default=2, ge=1, le=16)
    sources: tuple[Source, ...] = Field(min_length=1)
    feeds: tuple[Aggregate, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Berlin)") from exc
        return value

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def members(self, aggregate: Aggregate) -> tuple[Source, ...]:
        """The aggregate's sources in priority order: listed sources first, then by tag."""
        chosen = [self.source(sid) for sid in aggregate.sources]
        for source in self.sources:
            if source not in chosen and set(aggregate.tags) & set(source.tags):
                chosen.append(source)
        return tuple(chosen)


# --- loading -------------------------------------------------------------------------------

_TOP_KEYS = {
    "timezone",
    "output",
    "state",
    "base_url",
    "title",
    "websub_hub",
    "defaults",
    "sources",
    "feeds",
    "concurrency",
    "per_host",
}
_NOT_DEFAULTABLE = {"id", "title", "url", "description", "home"}


def load_config(path: str | Path) -> Config:
    """Read and validate sources.yaml; raise ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    where = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"YAML syntax error: {problem}", path=where, line=mark.line + 1 if mark else None
        ) from None
    if root is not None:
        _reject_duplicate_keys(root, where)
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping with at least 'sources:'", path=where, line=1)
    raw, origin = _merge_defaults(data, root, where)
    base = path.resolve().parent
    raw["path"] = path.resolve()
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise _translate(exc, root, origin, where) from None
    config = config.model_copy(
        update={"output": base / config.output, "state": base / config.state}
    )
    _cross_check(config, root, where)
    return config


def _merge_defaults(
    data: dict[str, Any], root: yaml.Node | None, where: str
) -> tuple[dict[str, Any], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Apply ``defaults`` to every source; remember which keys came from there."""
    raw = {k: v for k, v in data.items() if k != "defaults"}
    for key in data:
        if key not in _TOP_KEYS:
            line = _line(root, (key,), key_line=True)
            raise ConfigError(
                f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})",
                path=where,
                line=line,
                key=str(key),
            )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(
            "must be a mapping of source keys",
            path=where,
            line=_line(root, ("defaults",)),
            key="defaults",
        )
    allowed = set(Source.model_fields) - _NOT_DEFAULTABLE
    for key in defaults:
        if key not in allowed:
            reason = (
                "is set per source only"
                if key in _NOT_DEFAULTABLE
                else f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
            raise ConfigError(
                reason,
                path=where,
                key=f"defaults.{key}",
                line=_line(root, ("defaults", key), key_line=True),
            )
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


def _translate(
    exc: ValidationError,
    root: yaml.Node | None,
    origin: Mapping[tuple[Any, ...], tuple[Any, ...]],
    where: str,
) -> ConfigError:
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    # pydantic names the chosen union branch in the path ("function-after[...]"); drop it
    loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
    for length in range(len(loc), 0, -1):
        if loc[:length] in origin:
            loc = origin[loc[:length]] + loc[length:]
            break
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
        line = _line(root, loc, key_line=True)
    elif kind == "missing":
        message = "missing required key"
        line = _line(root, loc[:-1])
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        line = _line(root, loc)
    return ConfigError(message, path=where, line=line, key=_dotted(loc))


def _cross_check(config: Config, root: yaml.Node | None, where: str) -> None:
    def fail(message: str, loc: tuple[Any, ...]) -> None:
        raise ConfigError(message, path=where, line=_line(root, loc), key=_dotted(loc))

    if config.state.resolve().is_relative_to(config.output.resolve()):
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


def _reject_duplicate_keys(node: yaml.Node, where: str) -> None:
    for child in _walk(node):
        if isinstance(child, yaml.MappingNode):
            seen: set[str] = set()
            for key, _ in child.value:
                if key.value in seen:
                    raise ConfigError(
                        "duplicate key",
                        path=where,
                        line=key.start_mark.line + 1,
                        key=str(key.value),
                    )
                seen.add(key.value)


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    yield node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(key)
            yield from _walk(value)
    elif isinstance(node, yaml.SequenceNode):
        for value in node.value:
            yield from _walk(value)
