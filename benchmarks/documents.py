"""The benchmark's sources: which exist, where they live, and the documents they serve.

Source ``i`` of ``n``: even ``i`` is an HTML listing like the Integrationsportal der Stadt
Herne (``/s<i>/``), odd ``i`` an RSS 2.0 feed (``/s<i>.rss``). Each has 30 items and weighs
between 20 and 60 KB (the weight depends on ``i`` only). Pairs of sources share a loopback
address, spread round-robin over the addresses, so the feed half alone still uses all of them.
A source's document depends only on ``i`` and its version: version ``v`` shows stories
``v`` to ``v + 29``, newest first; a change adds 3 stories and drops the 3 oldest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ITEMS = 30
CHANGE_STEP = 3  # stories added by one change
HTML_SELECTORS = {
    "item": "article.news-teaser",
    "title": "h3",
    "date": ".news-date",
    "link": "a.more",
    "summary": ".news-text",
}
_EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
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
_TOPICS = (
    "Integration im Quartier",
    "Sprachkurse für Erwachsene",
    "Sanierung der Grundschule",
    "Bürgersprechstunde des Oberbürgermeisters",
    "Ehrenamtliche Begleiter gesucht",
    "Sperrung der Hauptstraße",
    "Neue Öffnungszeiten im Bürgerbüro",
    "Fachtag Inklusion",
    "Wochenmarkt zieht um",
    "Förderprogramm „Demokratie leben!“",
    "Ferienspiele für Kinder – jetzt anmelden",
    "Haushaltsentwurf vorgestellt",
)
_SENTENCES = (
    "Die Veranstalter laden herzlich zur Konferenz am 27. Februar von 17 bis 20 Uhr im "
    "Stadtteilzentrum, Wilhelmstraße 89a, ein.",
    "In einem geselligen Rahmen soll hinterfragt werden, was das Quartier braucht & wer hilft.",
    "Anmeldungen nimmt die Gleichstellungsstelle bis zum 15. März telefonisch entgegen.",
    "Florian Eichenmüller gibt einen Überblick über Bildungschancen, Ausbildung und Arbeit.",
    "„Demografische Entwicklungen beschäftigen alle Kommunen“, erklärte der Dezernent.",
    "Die Teilnahme ist kostenlos; eine Kinderbetreuung wird angeboten.",
)


@dataclass(frozen=True)
class Source:
    index: int
    kind: str  # "html" or "rss"
    address: str  # a loopback address, 127.0.0.k

    @property
    def id(self) -> str:
        return f"s{self.index}"

    @property
    def path(self) -> str:
        return f"/s{self.index}.rss" if self.kind == "rss" else f"/s{self.index}/"


def sources(n: int, addresses: int = 64, first: int = 1) -> list[Source]:
    """``addresses`` loopback addresses from 127.0.0.``first`` on."""
    return [
        Source(i, "html" if i % 2 == 0 else "rss", f"127.0.0.{first + (i // 2) % addresses}")
        for i in range(n)
    ]


def changes(n: int, percent: float) -> list[int]:
    """The sources one change touches: every pair whose number is a multiple of 100/percent,
    so as many listings as feeds change, spread over the addresses."""
    step = max(1, round(100 / percent))
    return [i for i in range(n) if (i // 2) % step == 0]


def target_size(index: int) -> int:
    """20 to 60 KB, spread evenly over the sources."""
    return 20_300 + (index * 7919) % 39_401


def _story_time(story: int) -> datetime:
    return _EPOCH + timedelta(hours=7 * story)


def _text(index: int, story: int, length: int) -> str:
    parts: list[str] = []
    size = 0
    k = index + story
    while size < length:
        sentence = _SENTENCES[k % len(_SENTENCES)]
        parts.append(sentence)
        size += len(sentence) + 1
        k += 1
    return " ".join(parts)[:length].rstrip()


def _title(index: int, story: int) -> str:
    return f"{_TOPICS[(index + story) % len(_TOPICS)]} ({index}/{story})"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary_length(index: int, fixed: int, per_char: float) -> int:
    """Characters of summary per item that bring the document to its target size, given the
    size of everything else and the bytes one character of summary costs once escaped."""
    return max(100, int((target_size(index) - fixed) / (ITEMS * per_char)))


def html_listing(index: int, version: int) -> bytes:
    """A listing page marked up like Herne's: furniture around a section of teasers."""
    length = _summary_length(index, 15_450, 1.03)
    teasers = []
    for story in range(version + ITEMS - 1, version - 1, -1):
        when = _story_time(story)
        title = _escape(_title(index, story))
        text = _escape(_text(index, story, length))
        teasers.append(
            '      <article class="news-teaser">\n'
            f'        <p class="news-date">Meldung vom {when.day:02d}. '
            f"{_MONTHS[when.month - 1]} {when.year}</p>\n"
            f'        <h3 class="news-title">{title}</h3>\n'
            f'        <div class="news-text"><p>{text}</p>'
            f'<p>Mehr im <a href="../programm-{story}.html">Programm</a>.</p></div>\n'
            f'        <a class="more" href="/Meldungen/News-Detailansicht_{index}_{story}.html'
            f'?ref=s{index}&amp;p=1">mehr zur Meldung: <span class="visually-hidden">{title}'
            "</span></a>\n"
            "      </article>\n"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="de">\n<head>\n  <meta charset="utf-8">\n'
        f"  <title>Meldungen - Stadt {index}</title>\n"
        f'  <base href="/s{index}/">\n'
        '  <link rel="stylesheet" href="/static/css/portal.css">\n'
        '  <script src="/static/js/tracking.js"></script>\n'
        "  <script>var _paq = window._paq || []; _paq.push(['trackPageView']);</script>\n"
        "</head>\n"
        '<body class="page-news">\n'
        '  <div id="cookie-banner" class="cookie-consent" role="dialog">\n'
        '    <p>Diese Website verwendet Cookies. <a href="/Datenschutz/">Datenschutz</a></p>\n'
        '    <button onclick="acceptCookies()">Alle akzeptieren</button>\n  </div>\n'
        '  <header class="site-header">\n'
        '    <a class="logo" href="/"><img src="/static/img/logo.svg" alt="Stadt"></a>\n'
        '    <nav class="main-nav"><ul>\n'
        '      <li><a href="/Rathaus/">Rathaus</a></li>\n'
        '      <li><a href="/Stadt-und-Leben/">Stadt und Leben</a></li>\n'
        '      <li><a href="/Meldungen/">Meldungen</a></li>\n'
        "    </ul></nav>\n  </header>\n"
        '  <main id="content">\n'
        f"    <h1>Pressemeldungen der Stadt {index}</h1>\n"
        '    <section class="news-list">\n      <h2>Pressemeldungen</h2>\n'
        + "".join(teasers)
        + "    </section>\n  </main>\n"
        '  <footer class="site-footer"><a href="/Impressum/">Impressum</a></footer>\n'
        "</body>\n</html>\n"
    )
    return page.encode("utf-8")


def rss_feed(index: int, version: int) -> bytes:
    """An RSS 2.0 feed as city press offices publish it: escaped HTML in description."""
    length = _summary_length(index, 10_900, 1.04)
    items = []
    for story in range(version + ITEMS - 1, version - 1, -1):
        text = _escape(_text(index, story, length))
        html = f"<p>{text}</p><p>Mehr im <a href='/programm-{story}.html'>Programm</a>.</p>"
        items.append(
            "<item>\n"
            f"  <title>{_escape(_title(index, story))}</title>\n"
            f"  <link>https://stadt{index}.example/presse/{story}.html</link>\n"
            f'  <guid isPermaLink="false">stadt{index}-presse-{story}</guid>\n'
            f"  <pubDate>{format_datetime(_story_time(story))}</pubDate>\n"
            f"  <description>{_escape(html)}</description>\n"
            "</item>\n"
        )
    feed = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
        f"<title>Stadt {index} – Pressemitteilungen</title>\n"
        f"<link>https://stadt{index}.example/presse/</link>\n"
        f"<description>Pressemitteilungen der Stadt {index}</description>\n"
        "<language>de</language>\n" + "".join(items) + "</channel>\n</rss>\n"
    )
    return feed.encode("utf-8")


def document(source: Source, version: int) -> bytes:
    if source.kind == "rss":
        return rss_feed(source.index, version)
    return html_listing(source.index, version)


def content_type(source: Source) -> str:
    if source.kind == "rss":
        return "application/rss+xml; charset=utf-8"
    return "text/html; charset=utf-8"


def write_civicfeed_config(
    folder: Path,
    url: Callable[[Source], str],
    chosen: list[Source],
    *,
    per_host: int,
    concurrency: int | None,
    timeout: float,
    state: str | None = None,
) -> Path:
    """A sources.yaml for these sources, and an aggregate of them all; ``state``: where the
    state is kept (civicfeed's default when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    selectors = ", ".join(f"{key}: {value}" for key, value in HTML_SELECTORS.items())
    lines = [
        "timezone: Europe/Berlin",
        "base_url: https://feeds.example.org/",
        f"per_host: {per_host}",
    ]
    if concurrency is not None:
        lines.append(f"concurrency: {concurrency}")
    if state is not None:
        lines.append(f"state: {state}")
    lines += ["defaults:", f"  timeout: {timeout:g}s", "sources:"]
    for source in chosen:
        lines += [
            f"  - id: {source.id}",
            f"    title: Stadt {source.index}",
            f"    url: {url(source)}",
            "    tags: [alle]",
        ]
        if source.kind == "html":
            lines.append(f"    html: {{{selectors}}}")
    lines += ["feeds:", "  - id: alle", "    title: Alle Quellen", "    tags: [alle]"]
    path = folder / "sources.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
