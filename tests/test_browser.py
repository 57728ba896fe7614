"""What a person sees: the index page and a feed in headless Chromium (Debian's package),
driven by Playwright, against `civicfeed run --serve` on a loopback port. Screenshots are kept
in test-artifacts/ for a person to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from origin import Origin
from test_service import Process, write_config

# CIVICFEED_CHROMIUM names another browser binary (or a missing one, to see the skip)
CHROMIUM = os.environ.get("CIVICFEED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = (
            "Chromium is needed for the browser tests: apt-get install chromium "
            "(scripts/test.sh installs it when run as root)"
        )
        # as root (and in CI) it can be installed, so its absence is a failure; elsewhere the
        # tests are skipped, and pytest counts and names them as skipped
        # (CIVICFEED_BROWSER_AS_USER=1: decide as for a user who is not root, to test this)
        root = os.geteuid() == 0 and not os.environ.get("CIVICFEED_BROWSER_AS_USER")
        if root or os.environ.get("CIVICFEED_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def site(origin: Origin, tmp_path: Path) -> Iterator[str]:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    service = Process(
        "run", "--config", str(write_config(origin, tmp_path)), "--serve", "127.0.0.1:0"
    )
    try:
        port = service.port()
        service.wait_for("dortmund ")
        service.wait_for("herne ")
        yield f"http://127.0.0.1:{port}"
    finally:
        service.kill()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def test_index_page_shows_feeds_and_subscribe_links(browser: Browser, site: str) -> None:
    page = browser.new_page()
    page.goto(f"{site}/")
    assert page.title() == "Meldungen als Feeds"
    headings = page.locator("main h2").all_inner_texts()
    assert headings == ["Alle", "Herne", "Dortmund"]
    card = page.locator("section.feed", has=page.get_by_role("heading", name="Alle"))
    assert "6 Meldungen" in card.inner_text()
    assert (
        card.get_by_role("link", name="RSS").get_attribute("href")
        == "https://feeds.example.org/alle.rss"
    )
    field = card.get_by_label("Adresse zum Abonnieren (RSS)")
    assert field.input_value() == "https://feeds.example.org/alle.rss"
    assert field.is_editable() is False  # read-only, there to be copied
    alternates = page.locator("head link[rel=alternate]")
    assert alternates.count() == 9  # three feeds, three formats each
    shot(page, "index")
    page.close()


def test_a_feed_opened_in_the_browser_is_readable(browser: Browser, site: str) -> None:
    page = browser.new_page()
    response = page.goto(f"{site}/alle.rss")
    assert response is not None
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == "Alle"
    assert "So abonnieren Sie diesen Feed" in page.locator("header").inner_text()
    titles = page.locator("article h2").all_inner_texts()
    assert len(titles) == 6
    assert titles[0] == "Demokratiekonferenz: Was braucht Wanne?"
    shared = page.locator("article", has_text="10 Jahre Integration.Interkommunal")
    assert "Auch veröffentlicht von: Dortmund" in shared.inner_text()
    shot(page, "feed-page")
    page.close()


def test_the_feed_file_itself_renders_through_its_stylesheet(browser: Browser, site: str) -> None:
    page = browser.new_page()
    page.goto(f"{site}/alle.atom?raw")
    if page.evaluate("typeof XSLTProcessor") == "undefined":
        # browsers are removing XSLT: then the feed must at least show as a document, and
        # people are served the readable page of the test above
        assert "Demokratiekonferenz: Was braucht Wanne?" in page.content()
        page.close()
        return
    # Chromium applies feed.xsl to the Atom document
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "Alle"
    assert "Dies ist ein Feed." in page.locator(".hint").inner_text()
    assert page.locator("article.entry").count() == 6
    assert page.locator("article.entry .meta").first.inner_text().startswith("2019-02-11")
    shot(page, "feed-stylesheet")
    page.close()


def test_demo_index_shows_absolute_subscribe_addresses_to_copy(
    browser: Browser, tmp_path: Path
) -> None:
    from test_demo import start_demo

    demo, base = start_demo(tmp_path)
    try:
        context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(base)
        assert page.title() == "civicfeed-Demo – Meldungen als Feeds"
        headings = page.locator("main h2").all_inner_texts()
        assert headings == [
            "Ruhrgebiet – alle Meldungen",
            "Stadt Herne (Beispiel)",
            "Stadt Dortmund (Beispiel)",
            "Stadt Mülheim an der Ruhr (Beispiel)",
        ]
        card = page.locator("section.feed", has=page.get_by_role("heading", name="Ruhrgebiet"))
        assert "8 Meldungen" in card.inner_text()
        field = card.get_by_label("Adresse zum Abonnieren (RSS)")
        assert field.input_value() == f"{base}ruhr.rss"
        assert field.is_editable() is False
        # copy it as a person would: select the field, copy, and read the clipboard back
        field.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Control+C")
        assert page.evaluate("navigator.clipboard.readText()") == f"{base}ruhr.rss"
        assert "base_url" not in page.content()  # the note is for files served elsewhere
        shot(page, "demo-index")
        context.close()
    finally:
        demo.kill()
