"""JSON objects -> flat string attributes at dotted paths, for REST directories.

Okta and Google return nested JSON (`profile.email`, `organizations[0].department`).
Templates name those values with dotted paths, `{profile.email}` and
`{organizations.0.department}`; this module produces exactly those keys,
lower-cased like every source's attribute names.

Pure: shared by the REST sources, imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Deeper nesting is not something a template names; it also bounds the work a
# hostile or broken record can cause.
MAX_DEPTH = 6


@dataclass(slots=True)
class PathTree:
    """The dotted paths to pick, as a tree of lower-case segments.

    Mutable on purpose: `spelling` learns how the directory spells each key
    (`countryCode` for `countrycode`) from the first object that has it, so
    every later object costs one dict lookup per wanted path instead of a
    scan of all its keys.
    """

    wanted: bool = False  # this node's own path is wanted (not only paths below it)
    children: dict[str, PathTree] = field(default_factory=dict)
    spelling: dict[str, str] = field(default_factory=dict)


def path_tree(paths: Iterable[str]) -> PathTree:
    """Dotted paths (any case) -> the tree `pick` walks."""
    tree = PathTree()
    for path in paths:
        node = tree
        for segment in path.lower().split("."):
            node = node.children.setdefault(segment, PathTree())
        node.wanted = True
    return tree


def pick(obj: Mapping[str, Any], tree: PathTree) -> dict[str, str]:
    """The values of `obj` at the tree's paths, as flat lower-case dotted keys.

    `{"profile": {"email": "a@x"}, "tags": ["a", "b"]}` with the paths
    `profile.email`, `tags`, `tags.1` -> `{"profile.email": "a@x", "tags": "a, b",
    "tags.0": "a", "tags.1": "b"}`. A path naming an object or a list gives
    all of its leaves; a list of scalars is also given joined with ", " under
    its own name. Keys match case-insensitively, as template names do. null
    and empty strings are left out (a template naming them renders as
    missing). Only the named paths are looked at: this runs once per user on
    reads of 100,000 users, and a user object carries many values no
    template reads.
    """
    out: dict[str, str] = {}
    _pick(obj, tree, "", out, 1)
    return out


def _pick(obj: Any, tree: PathTree, prefix: str, out: dict[str, str], depth: int) -> None:
    is_dict = type(obj) is dict
    for segment, node in tree.children.items():
        if is_dict:
            key = tree.spelling.get(segment, segment)
            if key in obj:
                value = obj[key]
            else:
                found = _find(obj, segment)
                if found is None:
                    continue
                tree.spelling[segment] = found
                value = obj[found]
        elif segment.isdigit() and int(segment) < len(obj):
            value = obj[int(segment)]
        else:
            continue
        name = prefix + segment
        if node.wanted:
            _add(out, name, value, depth)
        if node.children and depth < MAX_DEPTH and (type(value) is dict or type(value) is list):
            _pick(value, node, name + ".", out, depth + 1)


def _find(obj: Mapping[str, Any], segment: str) -> str | None:
    """The key of `obj` that is `segment` in another case, if any."""
    for key in obj:
        if type(key) is str and key.lower() == segment:
            return key
    return None


def _add(out: dict[str, str], name: str, value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        if value:
            out[name] = value
    elif value is None:
        return
    elif kind is bool:
        out[name] = "true" if value else "false"
    elif kind is int or kind is float:
        out[name] = str(value)
    elif depth >= MAX_DEPTH:
        return
    elif kind is dict:
        for sub_key, sub_value in value.items():
            _add(out, f"{name}.{_lower(sub_key)}", sub_value, depth + 1)
    elif kind is list:
        scalars: list[str] = []
        for index, item in enumerate(value):
            _add(out, f"{name}.{index}", item, depth + 1)
            if type(item) is str and item:
                scalars.append(item)
            elif type(item) in (int, float):
                scalars.append(str(item))
        if scalars:
            out[name] = ", ".join(scalars)


# JSON key -> lower-case key; bounded by the keys a directory's objects carry.
_LOWER_CACHE: dict[str, str] = {}


def _lower(key: str) -> str:
    lowered = _LOWER_CACHE.get(key)
    if lowered is None:
        lowered = key.lower()
        if len(_LOWER_CACHE) < 10_000:  # custom attributes are unbounded in theory
            _LOWER_CACHE[key] = lowered
    return lowered
