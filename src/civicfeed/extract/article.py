"""The article on an entry's detail page: its main content and its date.

trafilatura (main-content extraction) and htmldate (the date in a page's metadata) are used
only here. A ``content`` selector, when given, names the article's element instead. The HTML
returned is not yet safe: the normalise stage sanitises it like every summary.
"""

from __future__ import annotations

import copy
import logging

import lxml.html

from ..models import Article, Fetched
from . import detect
from .html import inner_html, parse_page, select

__all__ = ["read_article"]

# trafilatura and htmldate log every page they find nothing in
for _name in ("trafilatura", "htmldate", "courlan"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def read_article(fetched: Fetched, *, selector: str | None) -> Article:
    """The article of a detail page; ExtractError when the document is no HTML page."""
    root, warnings = parse_page(fetched)
    notes = list(warnings)
    body: str | None
    if selector:
        found = select(root, selector)
        body = inner_html(found[0]) if found else None
        if not found:
            notes.append(f"the content selector {selector!r} matched nothing")
    else:
        body = _main_content(root, fetched.url)
        if body is None:
            notes.append("no article text found")
    return Article(body, _date(root, fetched.url), tuple(notes))


def _main_content(root: lxml.html.HtmlElement, url: str) -> str | None:
    import trafilatura

    try:
        found = trafilatura.extract(
            copy.deepcopy(root),  # trafilatura cleans the tree it is given in place
            url=url,
            output_format="html",
            include_links=True,
            include_images=True,
            include_tables=True,
            include_comments=False,
            favor_precision=True,
            with_metadata=False,
        )
    except Exception:  # trafilatura fails in many ways on odd pages; there is then no article
        return None
    if not found:
        return None
    document = lxml.html.document_fromstring(found)
    body = document.find("body")
    return inner_html(body) if body is not None else None


def _date(root: lxml.html.HtmlElement, url: str) -> str | None:
    """The page's date: its metadata (htmldate, no guessing from stray text), else a date
    line at the start of its main text, as civicfeed reads listings."""
    from htmldate import find_date

    try:
        found = find_date(
            copy.deepcopy(root),
            url=url,
            original_date=True,
            extensive_search=False,
            outputformat="%Y-%m-%d",
        )
    except Exception:  # a page htmldate cannot read simply has no date from it
        found = None
    if found:
        return str(found)
    return detect.detail_date_text(copy.deepcopy(root))
