"""/metrics in the Prometheus text format; prometheus-client is used only here.

Counts of HTTP answers by status live in the serving process; everything else is read from
the store when scraped (a snapshot), so that `serve` beside a cron `refresh` reports the same
as `run --serve`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics", "Snapshot"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class Snapshot:
    """What the store says at the moment of a scrape."""

    sources_by_state: Mapping[str, int] = field(default_factory=dict)
    last_success: Mapping[str, float | None] = field(default_factory=dict)  # Unix time
    feed_entries: Mapping[str, int] = field(default_factory=dict)
    last_refresh: float | None = None  # Unix time the last refresh ended
    refresh_seconds: float | None = None  # how long it took
    fetch_errors: Mapping[str, int] = field(default_factory=dict)  # by kind, ever


class _FromStore(Collector):
    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        snap = self._read()
        states = GaugeMetricFamily(
            "civicfeed_sources", "Configured sources by state", labels=["state"]
        )
        for state, count in sorted(snap.sources_by_state.items()):
            states.add_metric([state], count)
        yield states
        success = GaugeMetricFamily(
            "civicfeed_source_last_success_timestamp_seconds",
            "When each source was last fetched successfully (Unix time; absent: never)",
            labels=["source"],
        )
        for source, when in snap.last_success.items():
            if when is not None:
                success.add_metric([source], when)
        yield success
        entries = GaugeMetricFamily(
            "civicfeed_feed_entries", "Stories in each feed, archive included", labels=["feed"]
        )
        for feed, count in snap.feed_entries.items():
            entries.add_metric([feed], count)
        yield entries
        if snap.last_refresh is not None:
            yield GaugeMetricFamily(
                "civicfeed_last_refresh_timestamp_seconds",
                "When the last refresh ended (Unix time)",
                value=snap.last_refresh,
            )
        if snap.refresh_seconds is not None:
            yield GaugeMetricFamily(
                "civicfeed_refresh_duration_seconds",
                "How long the last refresh took",
                value=snap.refresh_seconds,
            )
        errors = CounterMetricFamily(
            "civicfeed_fetch_errors", "Failed source fetches by kind of error", labels=["kind"]
        )
        for kind, count in sorted(snap.fetch_errors.items()):
            errors.add_metric([kind], count)
        yield errors


class Metrics:
    """One registry per server: the store's snapshot and the HTTP answers counted here."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_FromStore(read))
        self._requests = Counter(
            "civicfeed_http_requests",
            "HTTP requests answered by the feed server, by status",
            ["status"],
            registry=self.registry,
        )

    def answered(self, status: int) -> None:
        self._requests.labels(status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
