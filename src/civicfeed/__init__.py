"""civicfeed: public announcements from city portals as clean, deduplicated feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CivicfeedError, ConfigError, ExtractError, FetchError, StoreError

if TYPE_CHECKING:
    from .config import Config, load_config
    from .refresh import RefreshReport, SourceResult, refresh

# the project's version, as pyproject.toml gives it to the installed metadata (a test holds
# the two together): written here, so that the User-Agent a refresh sends before its first
# request needs no look-up of the installed distributions (importlib.metadata, some 20 ms)
__version__ = "0.1.0"

# imported when first used, so that `civicfeed --help` does not load every library
_LAZY = {
    "Config": "config",
    "load_config": "config",
    "RefreshReport": "refresh",
    "SourceResult": "refresh",
    "refresh": "refresh",
}


def __getattr__(name: str) -> Any:
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
