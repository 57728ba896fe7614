"""The first pass over a feed (extract/xmlscan.py): internal subsets found, feeds with more
items than are read cut, and the rest read no further than their root element."""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

import pytest

from civicfeed.extract import xmlscan
from civicfeed.extract.xmlscan import scan

_PARSER_CREATE = expat.ParserCreate


def _feed(items: int, text: str = "") -> bytes:
    entries = "".join(f"<item><title>{n} {text}</title></item>" for n in range(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{entries}</channel></rss>'.encode()


class _Counting:
    """An expat parser that counts the start tags it reports."""

    starts = 0

    def __init__(self, encoding: str | None = None) -> None:
        object.__setattr__(self, "_parser", _PARSER_CREATE(encoding))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "StartElementHandler":
            handler = value

            def value(*args: Any) -> None:
                _Counting.starts += 1
                handler(*args)

        setattr(self._parser, name, value)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[_Counting]:
    _Counting.starts = 0
    monkeypatch.setattr(xmlscan.expat, "ParserCreate", _Counting)
    return _Counting


def test_a_feed_with_more_items_than_are_read_is_cut(counting: type[_Counting]) -> None:
    found = scan(_feed(12), 10)
    assert found.items == 10
    assert found.content.count(b"<item>") == 10
    assert found.content.endswith(b"</channel></rss>")
    assert counting.starts > 10


def test_a_feed_with_few_items_is_read_to_its_root_element_only(
    counting: type[_Counting],
) -> None:
    content = _feed(10)
    found = scan(content, 20)  # the names in 10 start and 10 end tags
    assert found == xmlscan.Scan(False, content)
    assert counting.starts == 1


def test_words_like_item_in_the_text_only_make_the_scan_count(counting: type[_Counting]) -> None:
    content = _feed(3, "item entry item")
    found = scan(content, 5)
    assert found == xmlscan.Scan(False, content)  # counted, 3 items: not cut
    assert counting.starts > 3


def test_an_internal_subset_is_found_before_the_root_either_way() -> None:
    subset = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "b">]>'
    for items in (1, 20):
        body = _feed(items).replace(b'<?xml version="1.0"?>', subset)
        assert scan(body, 10).internal_subset


def test_a_document_broken_after_its_root_is_not_cut() -> None:
    content = _feed(2)[:-10] + b"<<broken"
    assert scan(content, 10) == xmlscan.Scan(False, content)
    assert scan(content + _feed(12)[60:], 10).items is None  # broken before the 11th item


def test_utf16_feeds_are_never_cut() -> None:
    content = _feed(12).decode().replace('version="1.0"?>', 'version="1.0" encoding="utf-16"?>')
    body = content.encode("utf-16")
    assert scan(body, 10) == xmlscan.Scan(False, body)
