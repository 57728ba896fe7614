"""RSS 2.0 and Atom 1.0, written directly as text.

One pass over the stories writes each document: every text and attribute value goes through
``_text`` or ``_attr`` (the escaping lxml's serialiser applies, so the bytes are the same as
when the documents were built as trees), and the renderers' last guard, ``scrub``, has made
every string XML-safe before. The documents were once built with feedgen, whose output was
parsed again with lxml to add what feedgen cannot express (the stylesheet instruction, hub and
archive links, atom:source with an id) and serialised a second time: three passes over every
story where one suffices. Output depends only on the stories: the feed's updated /
lastBuildDate is the newest change among its entries, never the clock, so an unchanged feed
renders to identical bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from .. import __version__
from ..dedup import Story
from ..xmlsafe import scrub
from .model import (
    Archive,
    FeedInfo,
    SourceRef,
    entry_updated,
    feed_updated,
    in_zone,
    summary_html,
    zoned_text,
)

__all__ = ["STYLESHEET_NAME", "render_atom", "render_rss"]

STYLESHEET_NAME = "feed.xsl"
ATOM = "http://www.w3.org/2005/Atom"
ARCHIVE_NS = "http://purl.org/syndication/history/1.0"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
RSS_DOCS = "http://www.rssboard.org/rss-specification"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ARCHIVE_MARKER = f'<fh:archive xmlns:fh="{ARCHIVE_NS}"/>'


def _text(value: str) -> str:
    """Character data: what lxml escapes in text (a carriage return would not survive a
    parser's line-end normalisation as itself)."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    return value


# the texts (summaries, articles) of the RSS document rendered last, escaped, by text: its
# Atom document, rendered next (see Publisher._render), escapes the same ones; a document's
# worth, replaced by each RSS document
_ESCAPED: dict[str, str] = {}


def _kept_text(value: str) -> str:
    """``_text`` of a summary or an article, kept for the Atom document after (RSS)."""
    escaped = _ESCAPED[value] = _text(value)
    return escaped


def _known_text(value: str) -> str:
    """``_text`` of a summary or an article, as the RSS document before made it (Atom)."""
    escaped = _ESCAPED.get(value)
    return _text(value) if escaped is None else escaped


def _attr(value: str) -> str:
    """An attribute value in double quotes: what lxml escapes there (white space other than
    the space as references, which attribute-value normalisation would otherwise turn into
    spaces)."""
    value = _text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\n" in value:
        value = value.replace("\n", "&#10;")
    if "\t" in value:
        value = value.replace("\t", "&#9;")
    return value


def _element(indent: str, tag: str, text: str, attributes: str = "") -> str:
    """One element with text on its own line (empty: the empty-element tag)."""
    if not text:
        return f"{indent}<{tag}{attributes}/>\n"
    return f"{indent}<{tag}{attributes}>{_text(text)}</{tag}>\n"


def rfc822(moment: datetime) -> str:
    """RFC 822 (as RFC 2822 writes it) in English whatever the locale: what strftime's
    ``%a, %d %b %Y %H:%M:%S %z`` writes in the C locale. The day and the time are cut from
    ``isoformat`` (one call in C, its year always four digits wide), the offset written once
    per offset: every story's date is written so."""
    text = moment.isoformat()
    return (
        f"{_DAYS[moment.weekday()]}, {text[8:10]} {_MONTHS[moment.month - 1]} "
        f"{moment.year} {text[11:19]}{_offset_text(moment.utcoffset())}"
    )


@functools.lru_cache(maxsize=64)
def _offset_text(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f" {sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def render_rss(
    info: FeedInfo, stories: Sequence[Story], zone: tzinfo, archive: Archive | None = None
) -> bytes:
    info, stories = scrub(info), scrub(stories)  # last guard: XML-safe whatever came in
    updated = in_zone(feed_updated(stories, info.empty_since), zone)
    parts = [
        _head(archive),
        f'<rss xmlns:atom="{ATOM}" xmlns:content="{CONTENT_NS}" version="2.0">\n',
        "  <channel>\n",
        _element("    ", "title", info.title),
        _element("    ", "link", info.home),
        _feed_links(info, archive, "rss", "    ", "atom:link"),
        _element("    ", "description", info.description),
        f"    <docs>{RSS_DOCS}</docs>\n",
        "    <generator>civicfeed</generator>\n",
    ]
    if info.language:
        parts.append(_element("    ", "language", info.language))
    parts.append(f"    <lastBuildDate>{rfc822(updated)}</lastBuildDate>\n")
    _ESCAPED.clear()  # the texts of the document before go
    sources: dict[str, str] = {}  # an aggregate's <source> line of each source, made once
    for story in stories:
        _rss_item(parts, info, story, zone, sources)
    parts.append("  </channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


def _rss_item(
    parts: list[str], info: FeedInfo, story: Story, zone: tzinfo, sources: dict[str, str]
) -> None:
    entry = story.entry
    parts.append("    <item>\n")
    if entry.title:
        parts.append(f"      <title>{_text(entry.title)}</title>\n")
    # an item without a link of its own still stands on its source's page
    link = entry.link or info.page_of(entry.source_id)
    if link:
        parts.append(f"      <link>{_text(link)}</link>\n")
    summary = summary_html(info, story)
    if summary:
        parts.append(f"      <description>{_kept_text(summary)}</description>\n")
        if entry.content:  # the article (follow)
            parts.append(f"      <content:encoded>{_kept_text(entry.content)}</content:encoded>\n")
    elif entry.content:  # the article alone is the description
        parts.append(f"      <description>{_kept_text(entry.content)}</description>\n")
    if story.id:
        parts.append(f'      <guid isPermaLink="false">{_text(story.id)}</guid>\n')
    parts.append(f"      <pubDate>{rfc822(in_zone(entry.published, zone))}</pubDate>\n")
    if info.aggregate:
        line = sources.get(entry.source_id)
        if line is None:
            ref = info.sources.get(entry.source_id)
            line = sources[entry.source_id] = "" if ref is None else _rss_source(ref)
        parts.append(line)
    parts.append("    </item>\n")


def _rss_source(ref: SourceRef) -> str:
    url = ref.rss_url or ref.page
    return _element("      ", "source", ref.title, f' url="{_attr(url)}"')


def render_atom(
    info: FeedInfo, stories: Sequence[Story], zone: tzinfo, archive: Archive | None = None
) -> bytes:
    info, stories = scrub(info), scrub(stories)  # last guard: XML-safe whatever came in
    updated = in_zone(feed_updated(stories, info.empty_since), zone)
    lang = f' xml:lang="{_attr(info.language)}"' if info.language else ""
    parts = [
        _head(archive),
        f'<feed xmlns="{ATOM}"{lang}>\n',
        _element("  ", "id", info.atom_id),
        _element("  ", "title", info.title),
        f"  <updated>{updated.isoformat()}</updated>\n",
    ]
    if info.title:
        parts.append(f"  <author>\n{_element('    ', 'name', info.title)}  </author>\n")
    parts.append(f'  <link href="{_attr(info.home)}" rel="alternate" type="text/html"/>\n')
    parts.append(_feed_links(info, archive, "atom", "  ", "link"))
    parts.append(f'  <generator version="{_attr(__version__)}">civicfeed</generator>\n')
    if info.description:
        parts.append(_element("  ", "subtitle", info.description))
    sources: dict[str, str] = {}  # an aggregate's <source> of each source, made once
    for story in stories:
        _atom_entry(parts, info, story, zone, sources)
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")


def _atom_entry(
    parts: list[str], info: FeedInfo, story: Story, zone: tzinfo, sources: dict[str, str]
) -> None:
    entry = story.entry
    parts.append("  <entry>\n")
    parts.append(_element("    ", "id", story.id))
    parts.append(_element("    ", "title", entry.title))
    parts.append(f"    <updated>{zoned_text(entry_updated(story), zone)}</updated>\n")
    if entry.content:  # the article (follow)
        parts.append(f'    <content type="html">{_known_text(entry.content)}</content>\n')
    # Atom wants a link or content in every entry; an item without a link of its own still
    # stands on its source's page
    parts.append(f'    <link href="{_attr(entry.link or info.page_of(entry.source_id))}"/>\n')
    summary = summary_html(info, story)
    if summary:
        parts.append(f'    <summary type="html">{_known_text(summary)}</summary>\n')
    parts.append(f"    <published>{zoned_text(entry.published, zone)}</published>\n")
    if info.aggregate:  # which of our sources published it
        block = sources.get(entry.source_id)
        if block is None:
            ref = info.sources.get(entry.source_id)
            block = sources[entry.source_id] = "" if ref is None else _atom_source(ref)
        parts.append(block)
    parts.append("  </entry>\n")


def _atom_source(ref: SourceRef) -> str:
    lines = [
        "    <source>\n",
        _element("      ", "id", ref.atom_id),
        _element("      ", "title", ref.title),
        f'      <link rel="alternate" href="{_attr(ref.page)}"/>\n',
    ]
    if ref.atom_url:
        lines.append(
            f'      <link rel="self" href="{_attr(ref.atom_url)}" type="application/atom+xml"/>\n'
        )
    lines.append("    </source>\n")
    return "".join(lines)


def _head(archive: Archive | None) -> str:
    href = (
        STYLESHEET_NAME if archive is None or archive.number is None else f"../../{STYLESHEET_NAME}"
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<?xml-stylesheet type="text/xsl" href="{href}"?>\n'
    )


def _feed_links(info: FeedInfo, archive: Archive | None, kind: str, indent: str, tag: str) -> str:
    """After the feed's own link: the archive marker (RFC 5005), then the links to itself,
    to the hub and to the rest of the archive."""
    links: list[tuple[str, str, str | None]] = []
    own = _own_url(info, archive, kind)
    if own:
        links.append(("self", own, f"application/{kind}+xml"))
    if info.hub and (archive is None or archive.number is None):
        links.append(("hub", info.hub, None))
    for rel, href in archive.links(info, kind) if archive else []:
        links.append((rel, href, f"application/{kind}+xml"))
    lines = []
    if archive is not None and archive.number is not None:
        lines.append(f"{indent}{_ARCHIVE_MARKER}\n")
    for rel, href, media in links:
        kind_of = f' type="{media}"' if media else ""
        lines.append(f'{indent}<{tag} href="{_attr(href)}" rel="{rel}"{kind_of}/>\n')
    return "".join(lines)


def _own_url(info: FeedInfo, archive: Archive | None, kind: str) -> str | None:
    if not info.base_url:
        return None
    if archive is None or archive.number is None:
        return info.self_url(kind)
    return info.url(archive.name(info.id, kind, archive.number))
