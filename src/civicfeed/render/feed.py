"""RSS 2.0 and Atom 1.0 with feedgen (the only module that uses it).

feedgen writes the documents; what it cannot express (the stylesheet instruction, hub and
archive links, atom:source with an id) is added to its output with lxml. Output depends only
on the stories: the feed's updated / lastBuildDate is the newest change among its entries,
never the clock, so an unchanged feed renders to identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from feedgen.feed import FeedGenerator
from lxml import etree

from .. import __version__
from ..dedup import Story
from ..xmlsafe import scrub
from .model import Archive, FeedInfo, entry_updated, feed_updated, in_zone, summary_html

__all__ = ["STYLESHEET_NAME", "render_atom", "render_rss"]

STYLESHEET_NAME = "feed.xsl"
ATOM = "http://www.w3.org/2005/Atom"
ARCHIVE_NS = "http://purl.org/syndication/history/1.0"


def render_rss(
    info: FeedInfo, stories: Sequence[Story], zone: tzinfo, archive: Archive | None = None
) -> bytes:
    info, stories = scrub(info), scrub(stories)  # last guard: XML-safe whatever came in
    document: bytes = _build(info, stories, zone, "rss").rss_str(pretty=False)
    return _decorate(document, info, stories, archive, "rss")


def render_atom(
    info: FeedInfo, stories: Sequence[Story], zone: tzinfo, archive: Archive | None = None
) -> bytes:
    info, stories = scrub(info), scrub(stories)  # last guard: XML-safe whatever came in
    document: bytes = _build(info, stories, zone, "atom").atom_str(pretty=False)
    return _decorate(document, info, stories, archive, "atom")


def _build(info: FeedInfo, stories: Sequence[Story], zone: tzinfo, kind: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(info.atom_id)
    fg.title(info.title)
    fg.description(info.description)
    fg.subtitle(info.description)
    fg.language(info.language)
    fg.author({"name": info.title})
    fg.generator("civicfeed", __version__)
    updated = in_zone(feed_updated(stories, info.empty_since), zone)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    if kind == "atom":
        fg.link(href=info.home, rel="alternate", type="text/html")
    else:
        fg.link(href=info.home, rel="alternate")
    for story in stories:
        _add(fg, info, story, zone)
    return fg


def _add(fg: FeedGenerator, info: FeedInfo, story: Story, zone: tzinfo) -> None:
    entry = story.entry
    fe = fg.add_entry(order="append")
    fe.id(story.id)
    fe.guid(story.id, permalink=False)
    fe.title(entry.title)
    # Atom wants a link or content in every entry; an item without a link of its own still
    # stands on its source's page
    fe.link(href=entry.link or info.page_of(entry.source_id), rel="alternate")
    summary = summary_html(info, story)
    if summary:
        fe.summary(summary, type="html")  # also the RSS <description>
    if entry.content:  # the article (follow): Atom <content>, RSS <content:encoded>
        fe.content(entry.content, type="html")
    fe.published(in_zone(entry.published, zone))
    fe.pubDate(in_zone(entry.published, zone))
    fe.updated(in_zone(entry_updated(story), zone))
    ref = info.sources.get(entry.source_id)
    if info.aggregate and ref is not None:
        fe.source(url=ref.rss_url or ref.page, title=ref.title)  # RSS <source>


def _decorate(
    document: bytes, info: FeedInfo, stories: Sequence[Story], archive: Archive | None, kind: str
) -> bytes:
    root = etree.fromstring(document)
    parent = root if kind == "atom" else root.find("channel")
    assert parent is not None
    links: list[tuple[str, str, str | None]] = []
    own = _own_url(info, archive, kind)
    if own:
        links.append(("self", own, f"application/{kind}+xml"))
    if info.hub and (archive is None or archive.number is None):
        links.append(("hub", info.hub, None))
    for rel, href in archive.links(info, kind) if archive else []:
        links.append((rel, href, f"application/{kind}+xml"))
    anchor = _anchor(parent, kind)
    for rel, href, media in reversed(links):
        link = etree.Element(f"{{{ATOM}}}link", nsmap=None if kind == "atom" else {"atom": ATOM})
        link.set("href", href)
        link.set("rel", rel)
        if media:
            link.set("type", media)
        anchor.addnext(link)
    if archive is not None and archive.number is not None:
        marker = etree.Element(f"{{{ARCHIVE_NS}}}archive", nsmap={"fh": ARCHIVE_NS})
        anchor.addnext(marker)
    if kind == "atom" and info.aggregate:
        _atom_sources(root, info, stories)
    etree.indent(root, space="  ")
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    href = (
        STYLESHEET_NAME if archive is None or archive.number is None else f"../../{STYLESHEET_NAME}"
    )
    head = (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<?xml-stylesheet type="text/xsl" href="' + href.encode() + b'"?>\n'
    )
    return head + body + b"\n"


def _own_url(info: FeedInfo, archive: Archive | None, kind: str) -> str | None:
    if not info.base_url:
        return None
    if archive is None or archive.number is None:
        return info.self_url(kind)
    return info.url(archive.name(info.id, kind, archive.number))


def _anchor(parent: etree._Element, kind: str) -> etree._Element:
    """The element after which feed-level links go: the last existing link, or the title."""
    tag = f"{{{ATOM}}}link" if kind == "atom" else "link"
    found = parent.findall(tag) or parent.findall(f"{{{ATOM}}}title") or parent.findall("title")
    return found[-1]


def _atom_sources(root: etree._Element, info: FeedInfo, stories: Sequence[Story]) -> None:
    """atom:source for every entry of an aggregate: which of our sources published it."""
    entries = root.findall(f"{{{ATOM}}}entry")
    for element, story in zip(entries, stories, strict=True):
        for old in element.findall(f"{{{ATOM}}}source"):
            element.remove(old)
        ref = info.sources.get(story.entry.source_id)
        if ref is None:
            continue
        source = etree.SubElement(element, f"{{{ATOM}}}source")
        etree.SubElement(source, f"{{{ATOM}}}id").text = ref.atom_id
        etree.SubElement(source, f"{{{ATOM}}}title").text = ref.title
        etree.SubElement(source, f"{{{ATOM}}}link", rel="alternate", href=ref.page)
        if ref.atom_url:
            etree.SubElement(
                source,
                f"{{{ATOM}}}link",
                rel="self",
                href=ref.atom_url,
                type="application/atom+xml",
            )
