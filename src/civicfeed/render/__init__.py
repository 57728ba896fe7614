"""Render: stories -> documents (bytes). RSS 2.0 and Atom 1.0 (written directly), JSON Feed
1.1, OPML, and HTML pages for people. Every renderer is a pure function of its arguments."""

from __future__ import annotations

from importlib.resources import files

from .feed import STYLESHEET_NAME, render_atom, render_rss
from .jsonfeed import render_json
from .model import Archive, FeedInfo, SourceRef, entry_updated, feed_updated
from .opml import absolute_opml, render_opml
from .pages import FeedSummary, absolute_page, german_date, render_index, render_preview

__all__ = [
    "STYLESHEET_NAME",
    "Archive",
    "FeedInfo",
    "FeedSummary",
    "SourceRef",
    "absolute_opml",
    "absolute_page",
    "entry_updated",
    "feed_updated",
    "german_date",
    "render_atom",
    "render_index",
    "render_json",
    "render_opml",
    "render_preview",
    "render_rss",
    "stylesheet",
]


def stylesheet() -> bytes:
    """The XSL stylesheet the RSS and Atom files refer to, for reading them in a browser."""
    return files(__package__).joinpath(STYLESHEET_NAME).read_bytes()
