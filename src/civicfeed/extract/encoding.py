"""Turning the bytes of an HTML page into text, the way browsers do.

Order: byte-order mark, HTTP charset, <meta charset> / XML declaration (in the first 4 KB),
then UTF-8 if the bytes are valid UTF-8, else windows-1252. Labels that mean ISO-8859-1 or
ASCII are read as windows-1252, as the WHATWG Encoding Standard prescribes: pages that say
ISO-8859-1 very often contain windows-1252 quotes and dashes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ExtractError
from ..xmlsafe import strip_controls

_BOMS = (
    (codecs.BOM_UTF8, "utf_8"),
    (codecs.BOM_UTF16_LE, "utf_16_le"),
    (codecs.BOM_UTF16_BE, "utf_16_be"),
)
_LATIN1_ALIASES = {"latin_1", "ascii", "iso8859_1"}
_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([a-zA-Z0-9_.\-]+)["']""")
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# share of replacement characters above which a document is taken for binary junk
_UNDECODABLE_SHARE = 0.02


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def browser_codec(label: str | None) -> str | None:
    """The Python codec a browser would use for a charset label, or None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):  # unknown, or not even a name ("utf\x00-8")
        return None
    name = name.replace("-", "_")
    if name in _LATIN1_ALIASES:
        return "cp1252"
    if name in {"utf_16", "utf_32"}:  # without a BOM, a declared UTF-16 is not to be trusted
        return "utf_8"
    return name


def http_charset(headers: Mapping[str, str]) -> str | None:
    match = _HTTP_CHARSET.search(headers.get("content-type", ""))
    return match.group(1) if match else None


def declared_charset(content: bytes) -> str | None:
    """The charset an HTML meta tag or an XML declaration names in the first 4 KB."""
    head = content[:4096]
    match = _XML_DECL.match(head) or _META.search(head)
    return match.group(1).decode("ascii", "replace") if match else None


def bom_codec(content: bytes) -> tuple[str, int] | None:
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return codec, len(bom)
    return None


def decode_html(content: bytes, headers: Mapping[str, str]) -> Decoded:
    """Decode a page; raise ExtractError when the bytes are not text in any sense."""
    bom = bom_codec(content)
    if bom:
        return _decode(content[bom[1] :], bom[0], "byte-order mark")
    for declared, origin in (
        (browser_codec(http_charset(headers)), "HTTP header"),
        (browser_codec(declared_charset(content)), "document"),
    ):
        if declared:
            return _decode(content, declared, origin)
    try:
        return Decoded(strip_controls(content.decode("utf-8")), "utf_8")
    except UnicodeDecodeError:
        return _decode(content, "cp1252", "fallback")


def _decode(content: bytes, codec: str, origin: str) -> Decoded:
    text = content.decode(codec, errors="replace")
    bad = text.count("\ufffd")
    if b"\x00" in content[:4096] and not codec.startswith("utf_16"):
        raise ExtractError("the response is binary data, not text")
    if bad and bad > _UNDECODABLE_SHARE * max(len(text), 1):
        raise ExtractError(
            f"the response cannot be decoded as {codec} ({origin}): {bad} invalid byte sequences"
        )
    warnings = (f"{bad} invalid byte sequence(s) for {codec} ({origin}) replaced",) if bad else ()
    return Decoded(strip_controls(text), codec, warnings)
