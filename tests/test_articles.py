"""Full text on real detail pages: the article and its date, as `follow` reads them.

tests/cases/articles/<name>.html are press releases and news pages of German and Austrian
public bodies (federal ministries and agencies on the Government Site Builder, the
Bundesrat, a state ministry, a city, a fire brigade, a TYPO3 tx_news site), saved as test
fixtures by adbar/trafilatura; <name>.json names repository, commit, path and licence, and
holds that repository's labels: text the article must contain ("with"), page furniture it
must not ("without"), and the date shown (three dates labelled by hand, as noted there).
The test prints what is found per page and overall, and holds the overall figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import lxml.html

from civicfeed.extract.article import read_article
from civicfeed.models import Fetched
from civicfeed.normalise import parse_date
from civicfeed.normalise.text import sanitise_html

CASES = sorted((Path(__file__).parent / "cases" / "articles").glob("*.json"))
ZONE = ZoneInfo("Europe/Berlin")
# Known and explained; a page that newly misses fails, one that is fixed must be removed.
KNOWN_MISSING = {  # "with" texts not found
    "bmfsfj-de-praesidentschaft": "the lead paragraph (the page's teaser) is left out",
    "schimmverband-at-weltmeisterschaft": "the lead paragraph (the page's teaser) is left out",
    "umweltbundesamt-de-atomkraft": "the lead paragraph (the page's teaser) is left out",
}
KNOWN_LEAKS = {  # "without" texts found
    "bmjv-de-konsum": "the page's heading is kept at the top of the article",
    "bundespolizei-de-belarus": "the page's heading is kept at the top of the article",
    "bundesrat-de-erinnerungen": "a photo credit under the article's picture",
    "cdu-fraktion-erfurt-de-waldorfschule": "a link to the next article below the text",
}
KNOWN_WRONG_DATES = {
    "umweltbundesamt-de-atomkraft": "the metadata (dcterms.date) says 21 January, the page "
    "shows 25 January",
}


def read(case: Path) -> tuple[dict[str, object], str, str | None]:
    meta = json.loads(case.read_text("utf-8"))
    fetched = Fetched(
        str(meta["url"]),
        200,
        MappingProxyType({"content-type": "text/html"}),
        case.with_suffix(".html").read_bytes(),
    )
    article = read_article(fetched, selector=None)
    content, _ = sanitise_html(article.html, fetched.url)
    assert content, case.stem
    text = lxml.html.fragment_fromstring(content, create_parent="div").text_content()
    when = parse_date(article.date_text, ZONE)
    return meta, " ".join(text.split()), when.date().isoformat() if when else None


def test_articles_of_real_pages() -> None:
    found = wanted = leaked = furniture = dates_right = dated = 0
    for case in CASES:
        meta, text, day = read(case)
        with_ = [str(s) for s in meta["with"]]  # type: ignore[attr-defined]
        without = [str(s) for s in meta["without"]]  # type: ignore[attr-defined]
        missing = [s for s in with_ if " ".join(s.split()) not in text]
        leaks = [s for s in without if " ".join(s.split()) in text]
        found += len(with_) - len(missing)
        wanted += len(with_)
        leaked += len(leaks)
        furniture += len(without)
        right = day == meta["date"]
        dated += 1
        dates_right += right
        print(
            f"{case.stem:<40} text {len(with_) - len(missing)}/{len(with_)}"
            f"  furniture {len(leaks)}/{len(without)}  date {day} ({meta['date']})"
        )
        assert not missing or case.stem in KNOWN_MISSING, (case.stem, missing)
        assert not leaks or case.stem in KNOWN_LEAKS, (case.stem, leaks)
        assert right or case.stem in KNOWN_WRONG_DATES, (case.stem, day, meta["date"])
    print(
        f"overall: article text found {found}/{wanted}, furniture kept {leaked}/{furniture}, "
        f"dates right {dates_right}/{dated} (no date where the page shows none counts as right)"
    )
    assert len(CASES) >= 12
