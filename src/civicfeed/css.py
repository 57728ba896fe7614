"""CSS selectors (lxml + cssselect): compiled, or refused with a reason people can act on.

Apart from the extractors (extract/html.py uses them) so that checking the configuration's
selectors loads cssselect only, not the parsers.
"""

from __future__ import annotations

import re
from functools import lru_cache

import lxml.etree
from cssselect import SelectorError
from lxml.cssselect import CSSSelector

__all__ = ["compile_selector"]


@lru_cache(maxsize=512)
def compile_selector(selector: str) -> CSSSelector:
    """Compile a CSS selector; ValueError with a readable reason if it is not one."""
    try:
        return CSSSelector(selector)
    except (SelectorError, lxml.etree.XPathError) as exc:
        raise ValueError(
            f"{selector!r} is not a valid CSS selector ({_selector_mistake(exc)})"
        ) from None


def _selector_mistake(exc: Exception) -> str:
    """cssselect's complaint ("got <DELIM '[' at 3>") in words with a 1-based position."""
    text = str(exc)
    if "<EOF at" in text:
        return "it ends where more is expected: close brackets and parentheses"
    found = re.search(r"<\w+ '(.*?)' at (\d+)>", text)
    if found:
        return f"unexpected {found.group(1)!r} at character {int(found.group(2)) + 1}"
    return "check its brackets, quotes and pseudo-classes"
