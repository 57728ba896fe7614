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


def _clean(text: str) -> bool:
    if _CONTROL_BMP.search(text) is not None:
        return False
    # Past that search the text holds no surrogate, so it encodes as UTF-16, in two bytes per
    # character exactly when every character is in the BMP: a test ten times cheaper than a
    # search for the characters beyond it.
    if text.isascii() or len(text.encode("utf-16-le")) == 2 * len(text):
        return True
    return _CONTROL.search(text) is None


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
