"""The normaliser's shortcuts against the plain steps they skip: the same results for
generated text."""

from __future__ import annotations

import os
import re
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from civicfeed.normalise import text
from civicfeed.xmlsafe import strip_controls

EXAMPLES = int(os.environ.get("CIVICFEED_FUZZ_EXAMPLES", "1000"))
_SPACE = re.compile(r"[\s\u2028\u2029]+")
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")

# ASCII text with every kind of white space and control, and some that is not ASCII
_PIECES = ["a", "B", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x7f"]
_PIECES += ["\x85", "\xa0", "\u00ad", "\u200b", "e\u0301", "é", "\u2028", "\ufeff"]
texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join) | st.text(max_size=40)


def _clean_text_unhurried(value: str, limit: int) -> tuple[str, bool]:
    value = value[: limit * 8]
    value = unicodedata.normalize("NFC", _INVISIBLE.sub("", strip_controls(value)))
    value = _SPACE.sub(" ", value).strip()
    if len(value) <= limit:
        return value, False
    head = value[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip() + "…", True


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts, st.sampled_from([5, 20, text.MAX_TITLE]))
@example(" a\x1c\x1fb\x00 ", 300)
@example("e\u0301\u00ad", 300)
def test_clean_text_of_ascii_skips_only_what_changes_nothing(value: str, limit: int) -> None:
    assert text.clean_text(value, limit) == _clean_text_unhurried(value, limit)
