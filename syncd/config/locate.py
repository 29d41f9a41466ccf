"""Where a config problem is in the file, and which key was probably meant: the two
things an admin needs to fix an indentation slip or a typo without reading pydantic."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
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


def _sections(schema: Any) -> Iterator[set[str]]:
    """The key names of every object the config's JSON Schema describes."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield set(schema["properties"])
        for item in schema.values():
            yield from _sections(item)
    elif isinstance(schema, list):
        for item in schema:
            yield from _sections(item)


def known_keys(schema: dict[str, Any]) -> set[str]:
    """Every key name the config's JSON Schema knows, in any section."""
    return set().union(*_sections(schema))


def keys_beside(schema: dict[str, Any], siblings: Iterable[str]) -> set[str]:
    """The keys of the config section that holds `siblings`: the schema object sharing
    the most keys with them (every key if none shares any). A typo is then matched
    against its own section, not against a key of some other section."""
    present = set(siblings)
    best = max(_sections(schema), key=lambda keys: len(keys & present), default=set())
    return best if best & present else known_keys(schema)


_ABSENT = object()


def config_keys(loc: tuple[int | str, ...], data: Any) -> list[int | str]:
    """The parts of a pydantic error location that are keys of the file: the location
    also names validators ('function-after[...]') and union branches (TagTemplate),
    which the file does not have."""
    keys: list[int | str] = []
    node = data
    for part in loc:
        if isinstance(part, str):
            foreign = isinstance(node, dict) and part not in node
            if part.startswith("function-") or (foreign and part[:1].isupper()):
                continue
        keys.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return keys


def value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    """The raw config value at a pydantic error location (_ABSENT if there is none)."""
    node = data
    for key in config_keys(loc, data):
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_list or (isinstance(node, dict) and key in node):
            node = node[key]
        else:
            return _ABSENT
    return node


def unknown_key_message(loc: tuple[Any, ...], data: Any, schema: dict[str, Any]) -> str:
    """What to tell an admin about a key the config does not know, at `loc`."""
    section = value_at(data, loc[:-1])
    siblings = [str(k) for k in section] if isinstance(section, dict) else []
    # An empty section beside it (`tags:` with nothing under it) is where the key was
    # meant to go: its lines were indented level with it instead of under it.
    empty = [k for k in siblings if section[k] is None]
    if empty:
        return f"unknown key; if it belongs under {empty[0]}, indent it under {empty[0]}"
    if hint := did_you_mean(str(loc[-1]), keys_beside(schema, siblings)):
        return f"unknown key{hint} (see `syncd schema`)"
    everywhere = known_keys(schema)
    if str(loc[-1]) in everywhere:
        return "not a key of this section: it belongs to another one (see `syncd schema`)"
    if hint := did_you_mean(str(loc[-1]), everywhere):
        return f"unknown key{hint} (a key of another section; see `syncd schema`)"
    return "unknown key (check the spelling; see `syncd schema`)"


def closest_choice(value: object, expected: str) -> str:
    """"; did you mean X?" for a value outside its choices (pydantic's `expected`
    reads "'a', 'b' or 'c'"): a close spelling, or the one choice it begins."""
    choices = re.findall(r"'([^']*)'", expected)
    text = str(value).strip().lower()
    starting = [c for c in choices if c.startswith(text)] if text else []
    if len(starting) == 1:
        return f"; did you mean {starting[0]}?"
    return did_you_mean(text, choices)


def did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""
