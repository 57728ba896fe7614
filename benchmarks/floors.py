"""civicfeed's own stages alone, on the benchmark's documents: what its parsing and its
rendering cost with no fetching, no store, no queue and no worker processes around them.

The parse-only floor of the table is feedparser's and lxml's; civicfeed's fast path reads the
same feeds in a fraction of that, so the feedparser floor says nothing about what civicfeed
itself could reach. These figures do: ``parse_cpu`` is what the parsing workers do with each
document (``refresh.read_document``: extraction and normalising), ``render_cpu`` what
publishing renders on a first run (``Publisher._render``: every source's four documents and
the aggregate's, with all its archive pages), in one process, one document after another.
The stories are planned and merged before the rendering is timed (deduplication is not
rendering), and each is rendered once, as on a first run, so that the renderers' last guard
(``xmlsafe.scrub``) meets every story for the first time, as it does there.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import documents
from .documents import CHANGE_STEP, changes, content_type, document, sources, write_civicfeed_config

if TYPE_CHECKING:
    from civicfeed.config import Config, Source
    from civicfeed.dedup import Story
    from civicfeed.models import Fetched

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # when the stories are first seen


def stage_floors(count: int, addresses: int, changed: float | None) -> dict[str, Any]:
    """CPU seconds of civicfeed's parsing of the documents of ``count`` sources (those of the
    changed ones after a change of ``changed`` percent, when given) and, on a first run only,
    of rendering every feed of them; the feeds and files rendered."""
    from civicfeed.dedup import merge_stories, plan_source
    from civicfeed.models import Entry
    from civicfeed.publish import Publisher, feed_specs, page_stories
    from civicfeed.refresh import read_document

    every = sources(count, addresses)
    if changed is None:
        chosen, version = every, 0
    else:
        chosen, version = [every[i] for i in changes(count, changed)], CHANGE_STEP
    config, jobs = fetched_documents(every, chosen, version)
    zone = config.tz
    read_document(*jobs[0], zone, config.date_order)  # imports, compiled selectors
    parse_cpu = 0.0
    entries: dict[str, tuple[Entry, ...]] = {}
    numbers = itertools.count(1)
    for fetched, source in jobs:
        start = time.process_time()
        normalised = read_document(fetched, source, zone, config.date_order)
        parse_cpu += time.process_time() - start
        plan = plan_source(
            [],
            normalised.candidates,
            now=NOW,
            zone=zone,
            new_id=lambda: f"urn:civicfeed:{next(numbers)}",
        )
        entries[source.id] = plan.new
    answer: dict[str, Any] = {"civicfeed_parse_cpu": round(parse_cpu, 4)}
    if changed is not None:
        return answer
    publisher = Publisher(config)
    render_cpu, feeds, files = 0.0, 0, 0
    for spec in feed_specs(config):
        members = [entry for member in spec.members for entry in entries.get(member, ())]
        stories = merge_stories(members, spec.members, zone, config.dedup_window)
        current, pages = page_stories(stories, spec.max_entries)
        start = time.process_time()
        archive = range(1, len(pages) + 1)  # page k is pages[k - 1]
        for group in publisher._render(spec, current, len(pages), _page_of(pages), archive):
            files += len(group)
        render_cpu += time.process_time() - start
        feeds += 1
    answer |= {"civicfeed_render_cpu": round(render_cpu, 4), "feeds": feeds, "files": files}
    return answer


def _page_of(pages: Sequence[Sequence[Story]]) -> Callable[[int], Sequence[Story]]:
    return lambda number: pages[number - 1]


def fetched_documents(
    every: Sequence[documents.Source], chosen: Sequence[documents.Source], version: int
) -> tuple[Config, list[tuple[Fetched, Source]]]:
    """The configuration of ``every`` source (benchmarks/documents.py's) and, for each of
    ``chosen``, in their order, its document of ``version`` as fetched with the source as
    configured: what a parsing worker is given."""
    from civicfeed.config import load_config
    from civicfeed.models import Fetched

    folder = Path(tempfile.mkdtemp(prefix="civicfeed-documents-"))
    try:  # the configuration's file is needed only while it is read
        config = load_config(
            write_civicfeed_config(
                folder,
                lambda s: f"http://{s.address}:8000{s.path}",
                list(every),
                per_host=2,
                concurrency=None,
                timeout=900,
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by_id = {source.id: source for source in config.sources}
    jobs = []
    for source in chosen:
        headers = MappingProxyType({"content-type": content_type(source)})
        fetched = Fetched(str(by_id[source.id].url), 200, headers, document(source, version))
        jobs.append((fetched, by_id[source.id]))
    return config, jobs
