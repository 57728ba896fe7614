"""A first pass over a feed with a real XML tokenizer (expat), before feedparser sees it.

It finds what a regular expression cannot be trusted to find: a DOCTYPE with an internal
subset (where entities are declared: entity expansion, external entities), in any encoding
expat reads (UTF-8, UTF-16 with or without a byte-order mark, ISO-8859-1, US-ASCII and the
single-byte codecs Python knows; other declared encodings are decoded by Python first). Expat
reports the DOCTYPE when it starts, so the subset itself is never read. The same pass counts
the items, so that a feed with far more items than are ever read is cut before feedparser
converts them all.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from xml.parsers import expat

__all__ = ["Scan", "scan"]

_ITEMS = {"item", "entry"}
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)["']""")
_FIRST_ELEMENT = re.compile(r"<[A-Za-z_]")


@dataclass(frozen=True)
class Scan:
    internal_subset: bool  # the DOCTYPE has one: refuse the document
    content: bytes  # the document to parse: cut after ``limit`` items, else as it came
    items: int | None = None  # items counted, when the cut was made


class _Stop(Exception):
    pass


def scan(content: bytes, limit: int) -> Scan:
    """Look at the prolog and count the items; see the module's description."""
    body = content
    if body[:1].isspace():  # whitespace before the XML declaration: common, and harmless
        body = body.lstrip()
    # Items are only counted where there can be more than ``limit``: every item's start tag
    # holds its name's bytes (in the encodings whose documents are cut, see _expat), so with
    # no more of those (end tags and text count too) the scan ends at the root element, where
    # the prolog does.
    few = body.count(b"item") + body.count(b"entry") <= limit
    found = _expat(body, None, limit, to_root=few)
    if found is None and _declared_codec(body) is not None:
        codec = _declared_codec(body)
        assert codec is not None
        text = body.decode(codec, errors="replace").encode("utf-8")
        found = _expat(text, "utf-8", limit, to_root=True)  # never cut: see _expat
    if found is None:
        # expat cannot read the prolog: what feedparser would take for declarations is
        # everything before the first element
        return Scan(_declares_in_head(body), content)
    return found if found.internal_subset or found.items is not None else Scan(False, content)


def _expat(body: bytes, encoding: str | None, limit: int, *, to_root: bool = False) -> Scan | None:
    """Scan with expat; None if it could not read as far as the first element. ``to_root``:
    only as far as the first element (the prolog), counting no items."""
    parser = expat.ParserCreate(encoding)
    state = {"root": False, "subset": False, "depth": 0, "items": 0, "cut": -1}
    stack: list[str] = []

    def doctype(name: str, system: str | None, public: str | None, subset: int) -> None:
        if subset:
            state["subset"] = True
            raise _Stop

    def start(name: str, attributes: object) -> None:
        state["root"] = True
        if to_root:
            raise _Stop
        stack.append(name)
        if name.rpartition(":")[2] in _ITEMS and len(stack) <= 3:
            state["items"] += 1
            if state["items"] > limit:
                state["cut"] = parser.CurrentByteIndex
                raise _Stop

    def end(name: str) -> None:
        stack.pop()

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(body, True)
    except _Stop:
        pass
    except expat.ExpatError:
        if not state["root"]:  # the prolog cannot be read (or its encoding, by expat)
            return None
    except (ValueError, LookupError, UnicodeError):  # a codec that is not one
        return None
    if state["subset"]:
        return Scan(True, body)
    if state["cut"] < 0 or encoding is not None or _is_utf16(body):
        # a document decoded by Python first, or in UTF-16, is not cut: its deadline holds
        return Scan(False, body)
    closing = "".join(f"</{name}>" for name in reversed(stack[:-1]))
    return Scan(False, body[: state["cut"]] + closing.encode("ascii"), limit)


def _declared_codec(body: bytes) -> str | None:
    match = _DECLARED.match(body)
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except (LookupError, ValueError):
        return None


def _is_utf16(body: bytes) -> bool:
    return body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or b"\x00" in body[:4]


def _declares_in_head(body: bytes) -> bool:
    """Is there an entity declaration or an internal subset before the first element?"""
    if body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        text = body.decode("utf-16", errors="replace")
    elif b"\x00" in body[:4]:
        text = body.decode("utf-16-be" if body[:1] == b"\x00" else "utf-16-le", errors="replace")
    else:
        text = body.decode("latin-1")
    first = _FIRST_ELEMENT.search(text)
    head = text[: first.start() if first else len(text)].upper()
    return "<!ENTITY" in head or ("<!DOCTYPE" in head and "[" in head)
