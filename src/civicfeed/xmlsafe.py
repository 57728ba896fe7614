"""Characters that XML 1.0 cannot carry: the one rule, applied wherever text enters the
pipeline, where candidates are built, in the store's repair migration and in the renderers."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import re
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = ["is_xml_safe", "scrub", "strip_controls"]

# C0 controls but tab/newline/return, C1 controls, surrogates and non-characters are all
# invalid or discouraged in XML 1.0: a single one would make a written feed unreadable, and
# lxml refuses to parse text that holds one.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
    "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
    "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
    "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)
# The same test in two cheap steps: the class above scans ten times slower than one of ranges
# (each character is compared with the 32 non-characters beyond the BMP one by one), so the
# BMP part is searched first, and the whole class only for text that reaches past the BMP.
_CONTROL_BMP = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)

T = TypeVar("T")


# Long text (a story's strings at once, a document) is tested faster as UTF-8: one
# translation of its bytes to the kind of each (a C0 control or DEL, which are single bytes;
# the lead byte of a C1 control, of a BMP non-character, of a character beyond the BMP), a
# search for each kind found, and for those that lead a sequence, a search of the sequences
# that make the characters XML cannot carry (each led by one byte: C searches for it first).
# A lone surrogate cannot be encoded at all. Two to three times faster than the search of
# the text for any language; short strings are searched as text (fewer steps).
_LONG = 64
_SINGLE_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_KINDS = bytes(
    ord("!")
    if byte in _SINGLE_BYTES
    else ord("c")
    if byte == 0xC2
    else ord("e")
    if byte == 0xEF
    else ord("a")
    if 0xF0 <= byte <= 0xF4
    else ord(".")
    for byte in range(256)
)
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080 to U+009F
_BMP_NONCHARACTER_UTF8 = re.compile(rb"\xef(?:\xb7[\x90-\xaf]|\xbf[\xbe\xbf])")
# U+1FFFE, U+1FFFF ... U+10FFFE, U+10FFFF (the first byte holds the plane's top bits, the
# second its two low bits under 1111)
_ASTRAL_NONCHARACTER_UTF8 = re.compile(rb"[\xf0-\xf4][\x8f\x9f\xaf\xbf]\xbf[\xbe\xbf]")


def _clean(text: str) -> bool:
    """Whether ``text`` holds no character of ``_CONTROL``."""
    if len(text) >= _LONG:
        return _clean_long(text)
    if _CONTROL_BMP.search(text) is not None:
        return False
    # Past that search the text holds no surrogate, so it encodes as UTF-16, in two bytes per
    # character exactly when every character is in the BMP: a test ten times cheaper than a
    # search for the characters beyond it.
    if text.isascii() or len(text.encode("utf-16-le")) == 2 * len(text):
        return True
    return _CONTROL.search(text) is None


def _clean_long(text: str) -> bool:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    kinds = data.translate(_KINDS)
    if b"!" in kinds:
        return False
    if b"c" in kinds and _C1_UTF8.search(data) is not None:
        return False
    if b"e" in kinds and _BMP_NONCHARACTER_UTF8.search(data) is not None:
        return False
    return b"a" not in kinds or _ASTRAL_NONCHARACTER_UTF8.search(data) is None


def strip_controls(text: str) -> str:
    return text if _clean(text) else _CONTROL.sub("", text)


@functools.lru_cache(maxsize=4096)
def is_xml_safe(text: str) -> bool:
    # cached: the renderers check the same stories' strings once per format (a str keeps
    # its hash, so a repeated check costs a lookup instead of a scan)
    return _clean(text)


def scrub(value: T) -> T:
    """``value`` with every string in it XML-safe: strings, frozen dataclasses, tuples, lists
    and mappings are rebuilt where something had to go; anything else is returned as it is.
    Nothing is copied when nothing is unsafe."""
    return _scrub(value)  # type: ignore[no-any-return]


# values that hold no text, passed over at once (the renderers scrub every story per format)
_ATOMS: frozenset[type] = frozenset({int, float, bool, type(None), datetime, bytes})
_FIELDS: dict[type, tuple[str, ...]] = {}  # each dataclass's field names, looked up once
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}  # see _getter
# frozen dataclasses found safe, by identity, for as long as they live: the renderers scrub
# the same stories and the same feed description (with every source of an aggregate) once per
# format and per archive page, and a second look is one lookup. Weak references, so that the
# marks cost no memory once a feed is written and scrubbing stays proportional to the stories
# that enter, however many a publish renders.
# Each mark is a weak reference that carries its key (a third of the memory of a reference
# with a callback of its own: 30,000 stories marked by an aggregate).
_SAFE: dict[int, weakref.KeyedRef[int, Any]] = {}


def _forget(mark: weakref.KeyedRef[int, Any]) -> None:
    if _SAFE.get(mark.key) is mark:
        del _SAFE[mark.key]


def _mark_safe(value: Any) -> None:
    key = id(value)
    # a class without weak references (slots) is looked at again next time
    with contextlib.suppress(TypeError):
        _SAFE[key] = weakref.KeyedRef(value, _forget, key)


def _is_marked(value: Any) -> bool:
    mark = _SAFE.get(id(value))
    return mark is not None and mark() is value


def _names(kind: type) -> tuple[str, ...] | None:
    """The field names of a dataclass (None for any other type), looked up once."""
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(kind):
        names = _FIELDS[kind] = tuple(item.name for item in dataclasses.fields(kind))
    return names


def _getter(kind: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """What reads every field of a frozen dataclass at once (None for any other type)."""
    try:
        return _GETTERS[kind]
    except KeyError:
        names = _names(kind)
        frozen = names is not None and kind.__dataclass_params__.frozen  # type: ignore[attr-defined]
        getter = _GETTERS[kind] = _fields_of(names) if frozen and names else None
        return getter


def _fields_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda value: (getattr(value, name),)
    return operator.attrgetter(*names)


def _texts(value: Any, getter: Callable[[Any], tuple[Any, ...]], found: list[str]) -> bool:
    """Every string of a frozen dataclass added to ``found``: its own fields' and those of
    the frozen dataclasses in it (as fields or in tuples), those already found safe left
    out; False where it holds anything else that may hold text (a list, a mapping, a
    subclass of str), which the walk of ``_scrub`` looks at instead."""
    for item in getter(value):
        kind = type(item)
        if kind is str:
            found.append(item)
        elif kind in _ATOMS:
            continue
        elif kind is tuple:
            for element in item:
                element_kind = type(element)
                if element_kind is str:
                    found.append(element)
                elif element_kind not in _ATOMS and not _nested_texts(element, found):
                    return False
        elif not _nested_texts(item, found):
            return False
    return True


def _nested_texts(value: Any, found: list[str]) -> bool:
    if _is_marked(value):
        return True
    getter = _getter(type(value))
    return getter is not None and _texts(value, getter, found)


def _all_safe(values: tuple[Any, ...] | list[Any]) -> bool:
    """Whether a sequence (the stories of a document) holds nothing to remove, told by one
    search over the strings of all its items at once; each frozen dataclass of it is then
    marked safe. False where an item is neither a string, a value without text nor a frozen
    dataclass ``_texts`` reads whole, or where the search finds something: ``_scrub`` then
    looks at each item."""
    found: list[str] = []
    fresh: list[Any] = []
    for item in values:
        kind = type(item)
        if kind is str:
            found.append(item)
        elif kind in _ATOMS or _is_marked(item):
            continue
        else:
            getter = _getter(kind)
            if getter is None or not _texts(item, getter, found):
                return False
            fresh.append(item)
    if not _clean("".join(found)):
        return False
    for item in fresh:
        _mark_safe(item)
    return True


def _scrub(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return value if is_xml_safe(value) else strip_controls(value)
    if kind in _ATOMS:
        return value
    if _is_marked(value):
        return value
    getter = _getter(kind)
    if getter is not None:
        # the usual case, a story as stored: one search over all its strings at once (a
        # character XML cannot carry is in their concatenation exactly when it is in one of
        # them), and only where that finds one, the walk below that repairs them field by field
        found: list[str] = []
        if _texts(value, getter, found) and _clean("".join(found)):
            _mark_safe(value)
            return value
    names = _names(kind)
    if names is not None:
        changes = {}
        for name in names:
            old = getattr(value, name)
            field_kind = type(old)
            if field_kind is str:  # the common fields, without a call of _scrub each
                if is_xml_safe(old):
                    continue
                new = strip_controls(old)
            elif field_kind in _ATOMS:
                continue
            else:
                new = _scrub(old)
            if new is not old:
                changes[name] = new
        if changes:
            return dataclasses.replace(value, **changes)
        if kind.__dataclass_params__.frozen:
            _mark_safe(value)
        return value
    if isinstance(value, str):  # a subclass of str
        return value if is_xml_safe(value) else strip_controls(value)
    if isinstance(value, tuple | list):
        if _all_safe(value):
            return value
        items = [_scrub(v) for v in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, Mapping):
        pairs = {_scrub(k): _scrub(v) for k, v in value.items()}
        if all(k in value and value[k] is v for k, v in pairs.items()):
            return value
        return MappingProxyType(pairs) if isinstance(value, MappingProxyType) else pairs
    return value
