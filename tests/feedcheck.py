"""Checks of written feeds by the rules the W3C Feed Validation Service applies."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
    r"|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"
)


def check_rss(path: Path, self_url: str | None = None) -> etree._Element:
    root = etree.fromstring(path.read_bytes())
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    for name in ("title", "link", "description"):
        assert (channel.findtext(name) or "").strip(), f"channel lacks <{name}>"
    build = channel.findtext("lastBuildDate")
    assert build
    assert RFC822.match(build), build
    if self_url:
        links = channel.findall(f"{ATOM}link")
        assert [a.get("href") for a in links if a.get("rel") == "self"] == [self_url]
    guids = []
    for item in channel.findall("item"):
        assert item.findtext("title") or item.findtext("description")
        guid = item.find("guid")
        assert guid is not None
        assert guid.text
        guids.append(guid.text)
        date = item.findtext("pubDate")
        assert date
        assert RFC822.match(date), date
        parsedate_to_datetime(date)
        link = item.findtext("link")
        assert link is None or link.startswith(("http://", "https://"))
    assert len(guids) == len(set(guids)), "guids repeat"
    assert not feedparser.parse(path.read_bytes()).bozo
    return root


def check_atom(path: Path, self_url: str | None = None) -> etree._Element:
    root = etree.fromstring(path.read_bytes())
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{name}") or "").strip(), f"feed lacks <{name}>"
    assert RFC3339.match(root.findtext(f"{ATOM}updated") or "")
    assert root.findtext(f"{ATOM}author/{ATOM}name")
    if self_url:
        selfs = [a.get("href") for a in root.findall(f"{ATOM}link") if a.get("rel") == "self"]
        assert selfs == [self_url]
    ids = []
    for entry in root.findall(f"{ATOM}entry"):
        ids.append(entry.findtext(f"{ATOM}id"))
        assert (entry.findtext(f"{ATOM}title") or "").strip()
        assert RFC3339.match(entry.findtext(f"{ATOM}updated") or "")
        published = entry.findtext(f"{ATOM}published")
        assert published is None or RFC3339.match(published)
        summary = entry.find(f"{ATOM}summary")
        assert summary is None or summary.get("type") == "html"
    assert all(ids), "an entry has no id"
    assert len(ids) == len(set(ids)), "ids repeat"
    assert not feedparser.parse(path.read_bytes()).bozo
    return root


def rss_items(path: Path) -> list[dict[str, str]]:
    root = etree.fromstring(path.read_bytes())
    return [
        {
            "title": i.findtext("title") or "",
            "link": i.findtext("link") or "",
            "guid": i.findtext("guid") or "",
            "pubDate": i.findtext("pubDate") or "",
            "description": i.findtext("description") or "",
        }
        for i in root.iter("item")
    ]


def atom_ids(path: Path) -> list[str]:
    root = etree.fromstring(path.read_bytes())
    return [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]
