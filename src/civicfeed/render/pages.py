"""HTML for people: the index of all feeds, and a readable page for every feed.

German first, plain HTML and CSS, no JavaScript. Like the feeds, the pages depend only on the
stored entries, so they are rewritten only when something in them changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from urllib.parse import urljoin

from ..dedup import Story
from ..models import Entry
from ..xmlsafe import scrub
from .model import FeedInfo, feed_updated, origins

__all__ = ["FeedSummary", "absolute_page", "german_date", "render_index", "render_preview"]

_MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)

_CSS = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #d0d0d0;
        --accent: #0b5394; --bg: #ffffff; --panel: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 1.05rem/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1; }
header, main, footer { max-width: 52rem; margin: 0 auto; padding: 1rem 1.25rem; }
header { border-bottom: 1px solid var(--line); }
h1 { font-size: 1.7rem; margin: .5rem 0; }
h2 { font-size: 1.3rem; margin: 0 0 .25rem; }
a { color: var(--accent); }
a:focus, input:focus { outline: 3px solid #f1c232; outline-offset: 2px; }
.feed, .entry { border: 1px solid var(--line); border-radius: .5rem; padding: 1rem;
                margin: 1rem 0; background: var(--panel); }
.meta { color: var(--muted); font-size: .95rem; margin: .25rem 0; }
.formats a { margin-right: 1rem; font-weight: 600; }
label { display: block; font-weight: 600; margin-top: .5rem; }
input.url { width: 100%; font: .95rem ui-monospace, monospace; padding: .35rem;
            border: 1px solid #8a8a8a; border-radius: .25rem; background: #fff; }
.hint { border-left: 4px solid var(--accent); background: #eef4fb; padding: .75rem 1rem; }
.summary { margin-top: .5rem; }
footer { color: var(--muted); font-size: .9rem; border-top: 1px solid var(--line); }
"""


@dataclass(frozen=True)
class FeedSummary:
    info: FeedInfo
    count: int
    newest: Entry | None  # the copy shown of its newest story
    updated: datetime
    pending: str | None = None  # never fetched successfully: why (no files are written)


def german_date(moment: datetime, zone: tzinfo, *, time: bool = False) -> str:
    local = moment.astimezone(zone)
    text = f"{local.day}. {_MONTHS[local.month - 1]} {local.year}"
    return text + (f", {local:%H:%M} Uhr" if time else "")


def render_index(title: str, summaries: Sequence[FeedSummary], zone: tzinfo, opml: str) -> bytes:
    title, summaries = scrub(title), scrub(summaries)  # last guard, as for the feeds
    alternates = "".join(
        f'<link rel="alternate" type="application/rss+xml" title="{escape(s.info.title)} (RSS)"'
        f' href="{escape(s.info.url(s.info.id + ".rss"))}">\n'
        f'<link rel="alternate" type="application/atom+xml" '
        f'title="{escape(s.info.title)} (Atom)" href="{escape(s.info.url(s.info.id + ".atom"))}">'
        f'\n<link rel="alternate" type="application/feed+json" '
        f'title="{escape(s.info.title)} (JSON Feed)" '
        f'href="{escape(s.info.url(s.info.id + ".json"))}">\n'
        for s in summaries
        if s.pending is None
    )
    cards = "\n".join(_card(s, zone) if s.pending is None else _waiting(s) for s in summaries)
    relative = not any(s.info.base_url for s in summaries)
    newest = max((s.updated for s in summaries), default=None)
    stand = (
        f"Stand: {german_date(newest, zone, time=True)}. " if newest and newest.year > 1970 else ""
    )
    body = f"""<header><h1>{escape(title)}</h1>
<p>Alle Meldungen als Feed zum Abonnieren: Kopieren Sie die Adresse eines Feeds in Ihren
Feedreader (zum Beispiel Feedly, Thunderbird oder NetNewsWire). Alle Feeds auf einmal
übernehmen Sie mit der <a href="{escape(opml)}">OPML-Datei</a>.</p>{_RELATIVE if relative else ""}
</header>
<main id="inhalt">
{cards}
</main>
<footer><p>{stand}Erstellt mit civicfeed.</p></footer>"""
    return _page(title, body, alternates)


# shown only in files written without base_url; the feed server, which knows its own address,
# makes the addresses absolute and leaves this out (see absolute_page)
_RELATIVE = """
<div class="hint relative-addresses" role="note"><p><strong>Hinweis für den Betrieb:</strong>
Die Adressen auf dieser Seite sind relativ, weil in <code>sources.yaml</code> kein
<code>base_url</code> gesetzt ist; ein Feedreader kann sie so nicht abonnieren. Tragen Sie die
öffentliche Adresse des Ausgabeordners ein, zum Beispiel
<code>base_url: https://feeds.example.org/</code>, oder liefern Sie die Feeds mit
<code>civicfeed serve</code> aus.</p></div>"""


def _waiting(summary: FeedSummary) -> str:
    """A feed whose source was never fetched successfully: no files yet, and why."""
    info = summary.info
    slug = escape(info.id)
    return f"""<section class="feed pending" aria-labelledby="feed-{slug}">
<h2 id="feed-{slug}">{escape(info.title)}</h2>
<p>{escape(info.description)}</p>
<p class="meta">Noch nicht abgerufen: {escape(summary.pending or "")}</p>
</section>"""


def _card(summary: FeedSummary, zone: tzinfo) -> str:
    info = summary.info
    slug = escape(info.id)
    newest = ""
    if summary.newest is not None:
        entry = summary.newest
        newest = (
            f'<p class="meta">Neueste Meldung: <a href="{escape(entry.link or info.home)}">'
            f"{escape(entry.title)}</a> ({german_date(entry.published, zone)})</p>"
        )
    count = "1 Meldung" if summary.count == 1 else f"{summary.count} Meldungen"
    links = " ".join(
        f'<a href="{escape(info.url(f"{info.id}.{ext}"))}" type="{media}">{name}</a>'
        for ext, media, name in (
            ("rss", "application/rss+xml", "RSS"),
            ("atom", "application/atom+xml", "Atom"),
            ("json", "application/feed+json", "JSON Feed"),
        )
    )
    subscribe = escape(info.url(f"{info.id}.rss"))
    return f"""<section class="feed" aria-labelledby="feed-{slug}">
<h2 id="feed-{slug}"><a href="{escape(info.url(info.id + ".html"))}">{escape(info.title)}</a></h2>
<p>{escape(info.description)}</p>
<p class="meta">{count}</p>
{newest}
<p class="formats">{links}</p>
<label for="url-{slug}">Adresse zum Abonnieren (RSS)</label>
<input class="url" id="url-{slug}" type="text" readonly value="{subscribe}">
</section>"""


def render_preview(info: FeedInfo, stories: Sequence[Story], zone: tzinfo) -> bytes:
    """The page a browser shows for a feed: readable entries and how to subscribe."""
    info, stories = scrub(info), scrub(stories)  # last guard, as for the feeds
    rss = escape(info.url(f"{info.id}.rss"))
    entries = "\n".join(_entry(info, story, zone) for story in stories)
    updated = feed_updated(stories)
    stand = f" Stand: {german_date(updated, zone, time=True)}." if stories else ""
    body = f"""<header><p><a href="{escape(info.url("index.html"))}">Alle Feeds</a></p>
<h1>{escape(info.title)}</h1><p>{escape(info.description)}</p>
<div class="hint" role="note"><p><strong>So abonnieren Sie diesen Feed:</strong> Kopieren Sie
die Adresse in Ihren Feedreader. Neue Meldungen erscheinen dort von selbst.</p>
<label for="subscribe">Adresse zum Abonnieren (RSS)</label>
<input class="url" id="subscribe" type="text" readonly value="{rss}">
<p class="formats"><a href="{rss}" type="application/rss+xml">RSS</a>
<a href="{escape(info.url(info.id + ".atom"))}" type="application/atom+xml">Atom</a>
<a href="{escape(info.url(info.id + ".json"))}" type="application/feed+json">JSON Feed</a></p>
</div></header>
<main id="inhalt">
{entries or "<p>Noch keine Meldungen.</p>"}
</main>
<footer><p>{len(stories)} Meldungen.{stand} Erstellt mit civicfeed.</p></footer>"""
    head = (
        f'<link rel="alternate" type="application/rss+xml" title="{escape(info.title)}" '
        f'href="{rss}">\n'
    )
    return _page(info.title, body, head)


def _entry(info: FeedInfo, story: Story, zone: tzinfo) -> str:
    entry = story.entry
    link = escape(entry.link or info.page_of(entry.source_id))
    source = info.sources.get(entry.source_id)
    where = f" · {escape(source.title)}" if info.aggregate and source else ""
    credits = origins(info, story) if info.aggregate else []
    also = ""
    if credits:
        names = ", ".join(f'<a href="{escape(url)}">{escape(title)}</a>' for title, url in credits)
        also = f'<p class="meta">Auch veröffentlicht von: {names}</p>'
    when = (
        f'<time datetime="{entry.published.isoformat()}">'
        f"{german_date(entry.published, zone)}</time>"
    )
    return f"""<article class="entry">
<h2><a href="{link}">{escape(entry.title)}</a></h2>
<p class="meta">{when}{where}</p>
<div class="summary">{entry.summary}</div>
{also}
</article>"""


def _page(title: str, body: str, head: str = "") -> bytes:
    return f"""<!DOCTYPE html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
{head}<style>{_CSS}</style>
</head>
<body>
<a class="skip" href="#inhalt">Zum Inhalt springen</a>
{body}
</body>
</html>
""".encode()


def absolute_page(document: bytes, base: str) -> bytes:
    """A page written without base_url, with every address made absolute against ``base``
    (where the server is reached) and the note about relative addresses left out."""
    import lxml.html

    root: lxml.html.HtmlElement = lxml.html.document_fromstring(document)
    root.make_links_absolute(base, resolve_base_href=False)
    for field in root.cssselect("input.url"):
        field.set("value", urljoin(base, field.get("value") or ""))
    for note in root.cssselect(".relative-addresses"):
        note.drop_tree()
    out: bytes = lxml.html.tostring(root, doctype="<!DOCTYPE html>", encoding="utf-8")
    return out + b"\n"
