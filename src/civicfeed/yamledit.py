"""Editing sources.yaml without disturbing it: ruamel.yaml is used only here.

A new source is appended to the ``sources:`` list as a block of its own. ruamel.yaml's
round-trip loader tells where the list's last item ends and how the file indents its items;
the new block is written in that style and inserted after it, so every byte outside the
block, comments and blank lines included, stays as it was. The result is read back to make
sure the list gained exactly that source.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import ConfigError

__all__ = ["append_source"]


def append_source(text: str, source: Mapping[str, Any], *, comment: str, where: str) -> str:
    """``text`` with ``source`` appended to its ``sources:`` list, preceded by ``comment``."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.replace("\r\n", "\n").split("\n")
    document = _load(text, where)
    if document is None or (isinstance(document, CommentedMap) and "sources" not in document):
        head = text.rstrip("\n") + "\n\n" if text.strip() else ""
        block = _block(source, dash=2, gap=2, mapping=2)
        added = head + "sources:\n" + f"  # {comment}\n" + block
        return _checked(added.replace("\n", newline), source, 0, where)
    sources = document.get("sources") if isinstance(document, CommentedMap) else None
    if not isinstance(sources, CommentedSeq) or not sources or sources.fa.flow_style():
        raise ConfigError(
            "'sources' must be a block list of sources (one '- id: ...' per source) "
            "for a source to be added",
            path=where,
            key="sources",
        )
    row, column = sources.lc.item(len(sources) - 1)
    item_line = lines[row]
    dash = item_line.rfind("-", 0, column)
    if dash < 0:
        raise ConfigError("cannot find where the last source starts", path=where, line=row + 1)
    end = row
    for number in range(row + 1, len(lines)):
        line = lines[number]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent <= dash and not line.lstrip().startswith("#"):
            break  # the next key of the document
        if indent > dash:
            end = number  # still the last source, its own comments included
    first = sources.lc.item(0)[0]
    block = _block(source, dash=dash, gap=column - dash, mapping=_mapping_indent(lines, first, end))
    gap = [""] if _separated(lines, row, dash) else []
    added_lines = [*gap, " " * dash + f"# {comment}", *block.rstrip("\n").split("\n")]
    result = lines[: end + 1] + added_lines + lines[end + 1 :]
    return _checked(newline.join(result), source, len(sources), where)


def _load(text: str, where: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"YAML syntax error: {exc.problem}",
            path=where,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", path=where) from None


def _block(source: Mapping[str, Any], *, dash: int, gap: int, mapping: int) -> str:
    """The source as one list item, in the file's indentation."""
    writer = YAML(typ="rt")
    writer.width = 4096  # never fold a long title or selector
    writer.indent(mapping=mapping, sequence=gap, offset=0)
    item = CommentedMap()
    for key, value in source.items():
        if isinstance(value, Mapping):
            nested = CommentedMap()
            nested.update(value)
            item[key] = nested
        else:
            item[key] = value
    out = io.StringIO()
    writer.dump([item], out)
    return "".join(" " * dash + line + "\n" for line in out.getvalue().rstrip("\n").split("\n"))


def _mapping_indent(lines: list[str], start: int, end: int) -> int:
    """How far the file indents a nested mapping within its sources; 2 if none has one."""
    previous = None
    for line in lines[start : end + 1]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" -"))
        if previous is not None and previous[1].rstrip().endswith(":") and indent > previous[0]:
            return indent - previous[0]
        previous = (indent, line.lstrip(" -"))
    return 2


def _separated(lines: list[str], row: int, dash: int) -> bool:
    """Are the sources separated by blank lines (judged above the last one)?"""
    number = row - 1
    while number >= 0 and lines[number].strip().startswith("#"):
        number -= 1
    return number >= 0 and not lines[number].strip()


def _checked(text: str, source: Mapping[str, Any], position: int, where: str) -> str:
    document = _load(text, where)
    sources = document.get("sources") if isinstance(document, CommentedMap) else None
    if (
        not isinstance(sources, list)
        or len(sources) != position + 1
        or _plain(sources[position]) != _plain(source)
    ):
        raise ConfigError(
            "the new source could not be added without changing the rest of the file",
            path=where,
            key="sources",
        )
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
