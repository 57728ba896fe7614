"""sources.yaml's schema: the pydantic models that validate a file's data.

Imported only when a file is read and validated (``config.parse_config``). Validation gives
the configuration's plain records (``config.Config`` and its parts), which every stage takes
and which a remembered configuration is pickled as: a run from a remembered configuration
never imports pydantic, whose import alone costs more CPU than the rest of a refresh's imports
together. Each model has its record's name, fields and defaults (the records hold the
defaults; tests/test_config.py holds the two equal, field by field).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from . import config as records
from .config import DateOrder, parse_duration, parse_size, parse_window
from .store.location import StateLocation, parse_state

__all__ = ["MODELS", "ValidationError", "validate"]


def _check_selector(value: str | None) -> str | None:
    if value is None:
        return None
    from .css import compile_selector  # the one place that knows CSS (not the parsers)

    compile_selector(value)
    return value


def _check_language(value: str) -> str:
    if not re.match(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", value):
        raise ValueError(f"{value!r} is not a language tag; write e.g. de, en or de-AT")
    return value


def _check_id(value: str) -> str:
    if not records.ID.match(value):
        raise ValueError(f"{value!r} is not a valid id: use lower-case letters, digits and '-'")
    return value


def _check_http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _auto_html(value: object) -> object:
    """``html: auto`` is an HTML listing whose items are found automatically."""
    if value == "auto":
        return {}
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Window = Annotated[float, BeforeValidator(parse_window)]
Language = Annotated[str, AfterValidator(_check_language)]
Size = Annotated[int, BeforeValidator(parse_size)]
OptionalSelector = Annotated[str | None, AfterValidator(_check_selector)]
Ident = Annotated[str, AfterValidator(_check_id)]


def _defaults(record: type[Any]) -> dict[str, Any]:
    """The defaults of a record's fields, by name (a factory's product for a factory)."""
    found: dict[str, Any] = {}
    for part in dataclasses.fields(record):
        if part.default is not dataclasses.MISSING:
            found[part.name] = part.default
        elif part.default_factory is not dataclasses.MISSING:
            found[part.name] = part.default_factory()
    return found


_HTML = _defaults(records.HtmlRules)
_SOURCE = _defaults(records.Source)
_AGGREGATE = _defaults(records.Aggregate)
_WORKER = _defaults(records.WorkerSettings)
_CONFIG = _defaults(records.Config)


class _Strict(BaseModel):
    # validators built when a file is first validated, not at import
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, defer_build=True)


class HtmlRules(_Strict):
    item: OptionalSelector = _HTML["item"]
    title: OptionalSelector = _HTML["title"]
    date: OptionalSelector = _HTML["date"]
    link: OptionalSelector = _HTML["link"]
    summary: OptionalSelector = _HTML["summary"]
    title_remove: str | None = _HTML["title_remove"]
    detail_date: OptionalSelector = _HTML["detail_date"]

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
    title: str | None = Field(default=_SOURCE["title"], min_length=1)
    url: str
    description: str | None = _SOURCE["description"]
    home: str | None = _SOURCE["home"]
    tags: tuple[str, ...] = _SOURCE["tags"]
    html: Annotated[HtmlRules | None, BeforeValidator(_auto_html)] = _SOURCE["html"]
    timeout: Duration = _SOURCE["timeout"]
    max_bytes: Size = _SOURCE["max_bytes"]
    every: Duration = _SOURCE["every"]
    cron: str | None = _SOURCE["cron"]
    max_entries: int = Field(default=_SOURCE["max_entries"], ge=1)
    language: Language | None = _SOURCE["language"]
    date_order: DateOrder | None = _SOURCE["date_order"]
    follow: bool = _SOURCE["follow"]
    content: OptionalSelector = _SOURCE["content"]
    follow_hosts: tuple[str, ...] = _SOURCE["follow_hosts"]

    @field_validator("follow_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", host):
                raise ValueError(f"{host!r} is not a host name (e.g. presse.example.de)")
        return tuple(host.lower() for host in value)

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
        return _check_http_url(value)


class Aggregate(_Strict):
    id: Ident
    title: str = Field(min_length=1)
    description: str | None = _AGGREGATE["description"]
    sources: tuple[str, ...] = _AGGREGATE["sources"]
    tags: tuple[str, ...] = _AGGREGATE["tags"]
    max_entries: int = Field(default=_AGGREGATE["max_entries"], ge=1)
    language: Language | None = _AGGREGATE["language"]

    @model_validator(mode="after")
    def _needs_members(self) -> Aggregate:
        if not self.sources and not self.tags:
            raise ValueError("an aggregate needs 'sources' or 'tags'")
        return self


class WorkerSettings(_Strict):
    stalled_after: Duration = Field(default=_WORKER["stalled_after"], ge=2)
    jobs: int | None = Field(default=_WORKER["jobs"], ge=1, le=256)


class Config(_Strict):
    path: Path
    title: str = Field(default=_CONFIG["title"], min_length=1)
    language: Language = _CONFIG["language"]
    websub_hub: str | None = _CONFIG["websub_hub"]
    timezone: str = _CONFIG["timezone"]
    output: Path = _CONFIG["output"]
    state: Annotated[StateLocation, PlainValidator(parse_state)] = _CONFIG["state"]
    publish_to: Literal["folder", "database"] | None = _CONFIG["publish_to"]
    base_url: str | None = _CONFIG["base_url"]
    concurrency: int = Field(default=_CONFIG["concurrency"], ge=1, le=256)
    per_host: int = Field(default=_CONFIG["per_host"], ge=1, le=16)
    dedup_window: Window = _CONFIG["dedup_window"]
    date_order: DateOrder = _CONFIG["date_order"]
    trust_proxy: bool = _CONFIG["trust_proxy"]
    stale_after: Duration | None = _CONFIG["stale_after"]
    allow_hosts: tuple[str, ...] = _CONFIG["allow_hosts"]
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    sources: tuple[Source, ...] = Field(min_length=1)
    feeds: tuple[Aggregate, ...] = _CONFIG["feeds"]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Berlin)") from exc
        return value

    @field_validator("allow_hosts")
    @classmethod
    def _allowed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.match(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$", host):
                raise ValueError(f"{host!r} is not a host name (e.g. intranet.stadt.example)")
        return tuple(host.lower() for host in value)

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_http_url(value)
        return value if value.endswith("/") else value + "/"


# each model, by the record it gives
MODELS: dict[type[Any], type[BaseModel]] = {
    records.HtmlRules: HtmlRules,
    records.Source: Source,
    records.Aggregate: Aggregate,
    records.WorkerSettings: WorkerSettings,
    records.Config: Config,
}
_RECORDS = {model: record for record, model in MODELS.items()}


def validate(raw: dict[str, Any]) -> records.Config:
    """A file's data (defaults merged, its path added) validated, as the configuration's
    records; ValidationError when it does not pass."""
    record: records.Config = _record(Config.model_validate(raw))
    return record


def _record(model: BaseModel) -> Any:
    kind = _RECORDS[type(model)]
    return kind(**{name: _value(getattr(model, name)) for name in type(model).model_fields})


def _value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _record(value)
    if type(value) is tuple:
        return tuple(_value(item) for item in value)
    return value
