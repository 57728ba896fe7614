"""civicfeed: public announcements from city portals as clean, deduplicated feeds."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("civicfeed")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

from .config import Config, load_config
from .errors import CivicfeedError, ConfigError, ExtractError, FetchError, StoreError
from .refresh import RefreshReport, SourceResult, refresh

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
