"""Full text (`follow: true`): each entry's detail page read once for its article and date.

Over loopback HTTP with a real SQLite file: a detail page that fails, one without a date,
one that redirects to another site, one that is a PDF, links to other hosts, and the
conditional request when an item changes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from civicfeed.cli import main
from conftest import write_sources
from origin import Origin
from test_refresh import refresh

CONTENT = "http://purl.org/rss/1.0/modules/content/"
ATOM = "{http://www.w3.org/2005/Atom}"
LONG = " ".join(["Der Rat hat beschlossen, die Kita an der Lindenstraße zu erweitern."] * 12)


def article(title: str, *, date_meta: str | None = None, extra: str = "") -> str:
    meta = f'<meta property="article:published_time" content="{date_meta}">' if date_meta else ""
    return f"""<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>{title}</title>
    {meta}</head><body><nav><a href="/">Start</a> <a href="/rathaus">Rathaus</a></nav>
    <div class="cookie-banner">Wir verwenden Cookies.</div>
    <main><article><h1>{title}</h1><p>{LONG}</p><p>Weitere Infos im <a href="/amt">Amt</a>.</p>
    {extra}</article></main><footer>Impressum · Datenschutz</footer></body></html>"""


def listing(items: list[tuple[str, str, str]]) -> str:
    rows = "".join(
        f'<div class="item"><span class="date">{date}</span><h3><a href="{href}">{title}</a></h3>'
        f'<p class="teaser">Kurz: {title}.</p></div>'
        for date, title, href in items
    )
    head = '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
    return f'{head}<body><div class="list">{rows}</div></body></html>'


def write_config(tmp_path: Path, origin: Origin, extra: str = "", timeout: str = "10s") -> Path:
    return write_sources(
        tmp_path,
        f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/aktuelles/')}\n"
        f"    timeout: {timeout}\n    follow: true\n"
        f"{extra}"
        "    html: {item: div.item, title: h3, date: .date, link: h3 a, summary: p.teaser}\n",
    )


def rss_items(config: Path) -> dict[str, dict[str, Any]]:
    root = etree.parse(str(config.parent / "feeds" / "stadt.rss"))
    return {
        item.findtext("title"): {
            "description": item.findtext("description") or "",
            "content": item.findtext(f"{{{CONTENT}}}encoded"),
            "date": item.findtext("pubDate"),
        }
        for item in root.iter("item")
    }


def standard_site(origin: Origin) -> None:
    other = origin.url("/fremd", host="localhost")
    origin.set(
        "/aktuelles/",
        listing(
            [
                ("10.02.2026", "Kita wird erweitert", "/news/kita"),
                ("09.02.2026", "Server kaputt", "/news/kaputt"),
                ("", "Ohne Datum", "/news/ohne-datum"),
                ("", "Datum im Artikel", "/news/mit-datum"),
                ("08.02.2026", "Umgezogen", "/news/umgezogen"),
                ("07.02.2026", "Haushaltsplan", "/docs/haushalt.pdf"),
                ("06.02.2026", "Satzung", "/news/satzung"),
                ("05.02.2026", "Fremde Seite", other),
            ]
        ),
    )
    origin.set("/news/kita", article("Kita wird erweitert", date_meta="2026-02-10"))
    origin.set("/news/kaputt", "weg", status=404, content_type="text/plain")
    origin.set("/news/ohne-datum", article("Ohne Datum"))
    origin.set("/news/mit-datum", article("Datum im Artikel", date_meta="2026-02-03"))
    origin.set(
        "/news/umgezogen",
        b"",
        status=302,
        headers={"Location": origin.url("/ziel", host="localhost")},
    )
    origin.set("/ziel", article("Ziel"))
    origin.set("/docs/haushalt.pdf", b"%PDF-1.4", content_type="application/pdf")
    origin.set("/news/satzung", b"%PDF-1.4", content_type="application/pdf")
    origin.set("/fremd", article("Fremde Seite"))


def test_follow_puts_the_article_into_the_feeds_and_keeps_every_entry(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standard_site(origin)
    config = write_config(tmp_path, origin)

    code, output = refresh(config, capsys)

    assert code == 0, output
    assert "new: 8 new" in output  # no entry lost, whatever its detail page did
    items = rss_items(config)
    kita = items["Kita wird erweitert"]
    assert kita["description"] == "Kurz: Kita wird erweitert."  # the teaser stays
    assert kita["content"] is not None
    assert "Lindenstraße zu erweitern" in kita["content"]
    assert f'<a href="{origin.url("/amt")}"' in kita["content"]  # links made absolute
    for furniture in ("Rathaus", "Cookies", "Impressum"):
        assert furniture not in kita["content"]
    # a failing detail page keeps the teaser
    assert items["Server kaputt"]["content"] is None
    assert "detail page " + origin.url("/news/kaputt") + ": HTTP 404" in output
    # no date on the listing: the article's date; on neither: the time first seen, with a warning
    assert items["Datum im Artikel"]["date"] == "Tue, 03 Feb 2026 00:00:00 +0100"
    assert items["Ohne Datum"]["content"] is not None
    assert "Ohne Datum: no date; using the time it was first seen" in output
    # a redirect to another site is not followed: the other site is never asked
    assert items["Umgezogen"]["content"] is None
    assert not origin.hits("/ziel")
    assert "redirected to " + origin.url("/ziel", host="localhost") in output
    # a PDF link is never fetched; a page that turns out to be a PDF keeps its teaser
    assert not origin.hits("/docs/haushalt.pdf")
    assert items["Satzung"]["content"] is None
    assert "application/pdf" in output
    # a link to another host is not followed at all
    assert not origin.hits("/fremd")
    assert items["Fremde Seite"]["content"] is None

    atom = etree.parse(str(config.parent / "feeds" / "stadt.atom"))
    entry = next(
        e for e in atom.iter(f"{ATOM}entry") if e.findtext(f"{ATOM}title") == "Kita wird erweitert"
    )
    assert "Lindenstraße" in (entry.findtext(f"{ATOM}content") or "")
    assert entry.find(f"{ATOM}content").get("type") == "html"
    assert entry.findtext(f"{ATOM}summary") == "Kurz: Kita wird erweitert."
    document = json.loads((config.parent / "feeds" / "stadt.json").read_text(encoding="utf-8"))
    item = next(i for i in document["items"] if i["title"] == "Kita wird erweitert")
    assert "Lindenstraße" in item["content_html"]
    assert item["summary"] == "Kurz: Kita wird erweitert."


def test_detail_pages_are_read_once_then_only_conditionally_when_the_item_changes(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standard_site(origin)
    config = write_config(tmp_path, origin)
    assert refresh(config, capsys)[0] == 0
    assert len(origin.hits("/news/kita")) == 1

    code, output = refresh(config, capsys)  # the listing is unchanged (answered with 304)
    assert code == 0, output
    assert len(origin.hits("/news/kita")) == 1

    page = listing(
        [
            ("10.02.2026", "Kita wird erweitert (aktualisiert)", "/news/kita"),
            ("09.02.2026", "Server kaputt", "/news/kaputt"),
        ]
    )
    origin.set("/aktuelles/", page)
    code, output = refresh(config, capsys)
    assert code == 0, output
    kita = origin.hits("/news/kita")
    assert len(kita) == 2
    assert kita[-1].headers.get("If-None-Match")  # asked conditionally: answered 304
    # the failed page is tried again; pages of entries no longer listed are not
    assert len(origin.hits("/news/kaputt")) == 2
    assert len(origin.hits("/news/ohne-datum")) == 1
    items = rss_items(config)
    assert "Lindenstraße" in (items["Kita wird erweitert (aktualisiert)"]["content"] or "")
    assert "Lindenstraße" in (items["Ohne Datum"]["content"] or "")  # kept in the store


def test_follow_hosts_and_a_content_selector(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = origin.url("/fremd", host="localhost")
    origin.set("/aktuelles/", listing([("05.02.2026", "Fremde Seite", other)]))
    box = '<div class="box">Nur <b onclick="steal()">das</b> hier.<script>x()</script></div>'
    origin.set("/fremd", article("Fremde Seite", extra=box))
    config = write_config(
        tmp_path, origin, "    follow_hosts: [localhost]\n    content: article .box\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert rss_items(config)["Fremde Seite"]["content"] == "Nur <b>das</b> hier."  # sanitised


def test_follow_on_a_feed_source(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = origin.url("")
    origin.set(
        "/presse.rss",
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>P</title><link>{base}/</link>
        <description>d</description><item><title>Kita wird erweitert</title>
        <link>{base}/news/kita</link><description>Kurz.</description>
        <pubDate>Tue, 10 Feb 2026 09:00:00 +0100</pubDate></item></channel></rss>""",
        content_type="application/rss+xml",
    )
    origin.set("/news/kita", article("Kita wird erweitert"))
    config = write_sources(
        tmp_path, f"  - id: stadt\n    title: S\n    url: {base}/presse.rss\n    follow: true\n"
    )
    code, output = refresh(config, capsys)
    assert code == 0, output
    item = rss_items(config)["Kita wird erweitert"]
    assert item["description"] == "Kurz."
    assert "Lindenstraße" in (item["content"] or "")


def test_check_shows_the_full_text_it_would_read(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/aktuelles/", listing([("10.02.2026", "Kita wird erweitert", "/news/kita")]))
    origin.set("/news/kita", article("Kita wird erweitert"))
    config = write_config(tmp_path, origin)
    assert main(["check", "stadt", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\n     Kurz: Kita wird erweitert.\n     full text: 139 words\n" in out
    assert main(["check", "stadt", "--config", str(config), "--json"]) == 0
    item = json.loads(capsys.readouterr().out)["items"][0]
    assert "Lindenstraße" in item["content"]
    assert not (tmp_path / ".civicfeed").exists()


def test_a_hanging_detail_page_ends_with_the_sources_deadline_and_loses_nothing(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    released = threading.Event()

    def hang(handler: BaseHTTPRequestHandler) -> None:
        released.wait(10)  # longer than the source's timeout

    origin.set(
        "/aktuelles/",
        listing(
            [
                ("10.02.2026", "Kita wird erweitert", "/news/kita"),
                ("09.02.2026", "Hängt", "/news/haengt"),
            ]
        ),
    )
    origin.set("/news/kita", article("Kita wird erweitert"))
    origin.routes["/news/haengt"] = hang
    config = write_config(tmp_path, origin, timeout="2s")
    try:
        code, output = refresh(config, capsys)
    finally:
        released.set()
    assert code == 0, output
    assert "new: 2 new" in output
    assert f"detail page {origin.url('/news/haengt')}: timed out" in output
    items = rss_items(config)
    assert items["Hängt"]["content"] is None
    assert items["Hängt"]["description"] == "Kurz: Hängt."
    assert "Lindenstraße" in (items["Kita wird erweitert"]["content"] or "")


def test_detail_pages_keep_to_the_per_host_limit(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = threading.Lock()
    in_flight = [0]
    most = [0]

    def slow_article(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        released.wait(0.2)
        body = article("Artikel").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        with lock:
            in_flight[0] -= 1

    released = threading.Event()
    items = [(f"0{day}.02.2026", f"Meldung {day}", f"/news/{day}") for day in range(1, 7)]
    origin.set("/aktuelles/", listing(items))
    for _, _, path in items:
        origin.routes[path] = slow_article
    config = write_config(tmp_path, origin)
    config.write_text("per_host: 1\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert all(rss_items(config)[title]["content"] for _, title, _ in items)
    assert most[0] == 1  # one request at a time to the host, detail pages included
