"""Characters that XML 1.0 cannot carry, removed wherever text enters the pipeline."""

from __future__ import annotations

import re

__all__ = ["strip_controls"]

# C0 controls but tab/newline/return, C1 controls, surrogates and non-characters are all
# invalid or discouraged in XML 1.0: a single one would make a written feed unreadable, and
# lxml refuses to parse text that holds one.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def strip_controls(text: str) -> str:
    return _CONTROL.sub("", text)
