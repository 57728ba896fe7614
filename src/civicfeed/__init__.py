"""civicfeed: public announcements from city portals as clean, deduplicated feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CivicfeedError, ConfigError, ExtractError, FetchError, StoreError

if TYPE_CHECKING:
    __version__: str
    from .config import Config, load_config
    from .refresh import RefreshReport, SourceResult, refresh

# imported when first used, so that `civicfeed --help` does not load every library
_LAZY = {
    "Config": "config",
    "load_config": "config",
    "RefreshReport": "refresh",
    "SourceResult": "refresh",
    "refresh": "refresh",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("civicfeed")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata when first asked for
        globals()["__version__"] = found = _version()
        return found
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CivicfeedError",
    "Config",
    "ConfigError",
    "ExtractError",
    "FetchError",
    "RefreshReport",
    "SourceResult",
    "StoreError",
    "__version__",
    "load_config",
    "refresh",
]
