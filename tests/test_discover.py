"""Feed discovery and selector pinning on real pages (tests/cases/listings/, saved by public
repositories; provenance beside each page).

tests/cases/discover/listing-pages.json holds, per page, the feeds it names in
``<link rel="alternate">`` (read by hand from the page source) or, for a page naming none,
the addresses its CMS usually publishes a feed at.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest

from civicfeed.config import HtmlRules
from civicfeed.extract.discover import MAX_GUESSES, document_kind, feed_links, guessed_feeds
from civicfeed.extract.html import extract_html, parse_page
from civicfeed.extract.pin import pin_listing
from civicfeed.models import Fetched
from civicfeed.normalise.text import clean_text

LISTINGS = Path(__file__).parent / "cases" / "listings"
EXPECTED = json.loads(
    (Path(__file__).parent / "cases" / "discover" / "listing-pages.json").read_text("utf-8")
)["pages"]
# pages on which pinned selectors read exactly what detection reads; only ever raised
PINNED_FLOOR = 23


def page(name: str) -> Fetched:
    meta = json.loads((LISTINGS / f"{name}.json").read_text("utf-8"))
    return Fetched(
        meta["url"],
        200,
        MappingProxyType({"content-type": "text/html"}),
        (LISTINGS / f"{name}.html").read_bytes(),
    )


def test_every_listing_page_has_its_expectation() -> None:
    assert sorted(EXPECTED) == sorted(p.stem for p in LISTINGS.glob("*.html"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_feeds_a_real_page_names(name: str) -> None:
    fetched = page(name)
    assert document_kind(fetched) == "page"
    root, _ = parse_page(fetched)
    expected = EXPECTED[name]
    assert [[f.kind, f.url] for f in feed_links(root, fetched.url)] == expected["linked"]
    if not expected["linked"]:
        guesses = [g.url for g in guessed_feeds(root, fetched.url)]
        assert guesses == expected["guessed"]
        assert len(guesses) <= MAX_GUESSES


def test_pinned_selectors_read_real_pages_as_detection_does() -> None:
    exact, misses = 0, []
    for html in sorted(LISTINGS.glob("*.html")):
        fetched = page(html.stem)
        pinned = pin_listing(fetched)
        assert pinned is not None, html.stem
        if not pinned.exact:
            misses.append(f"{html.stem}: {'; '.join(pinned.notes)}")
            continue
        exact += 1
        # pinned, the page gives detection's titles and links (dates: pin_listing checks)
        items = extract_html(fetched, HtmlRules(**pinned.as_dict())).items
        auto = extract_html(fetched, HtmlRules()).items
        assert [(clean_text(i.title)[0], i.link) for i in items] == [
            (clean_text(i.title)[0], i.link) for i in auto
        ]
    total = len(list(LISTINGS.glob("*.html")))
    print(f"\npinned selectors read {exact} of {total} real pages exactly as detection does")
    for miss in misses:
        print(f"  not pinned (html: auto instead): {miss}")
    assert exact >= PINNED_FLOOR
