"""Where a config problem is in the file, and which key was probably meant: the two
things an admin needs to fix an indentation slip or a typo without reading pydantic."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import yaml


def line_of(node: yaml.Node | None, loc: Iterable[int | str]) -> int | None:
    """The 1-based line of the deepest node of `loc` that the file has (a missing key
    points at the mapping that lacks it)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    # An unknown key is its own line; a bad value is the value's.
                    child = value
                    line = key.start_mark.line + 1
                    break
            else:
                continue  # a union's branch name, not a key: stay at this node
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and part < len(node.value)):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            line = node.start_mark.line + 1
    return line


def known_keys(schema: dict[str, Any]) -> set[str]:
    """Every key name the config's JSON Schema knows, in any section."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            found.update(value.get("properties", {}))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(schema)
    return found


def did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""
