"""JSON objects -> flat string attributes with dotted paths, for REST directories.

Okta and Google return nested JSON (`profile.email`, `organizations[0].department`).
Templates name those values with dotted paths, `{profile.email}` and
`{organizations.0.department}`; this module produces exactly those keys,
lower-cased like every source's attribute names.

Pure: shared by the REST sources, imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Deeper nesting is not something a template names; it also bounds the work a
# hostile or broken record can cause.
MAX_DEPTH = 6


def flatten(obj: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str]:
    """`{"profile": {"email": "a@x"}, "tags": ["a", "b"]}` ->
    `{"profile.email": "a@x", "tags.0": "a", "tags.1": "b", "tags": "a, b"}`.

    Keys are lower-cased. null and empty strings are left out (a template
    naming them renders as missing). A list of scalars is also given joined
    with ", " under its own name. Top-level keys in `skip` (e.g. `_links`,
    `credentials`) are not read at all. This runs once per user on reads of
    100,000 users: exact type checks and a cache of lower-cased keys keep it
    cheap.
    """
    out: dict[str, str] = {}
    skipped = frozenset(skip)
    for key, value in obj.items():
        if key in skipped:
            continue
        _add(out, _lower(key), value, 1)
    return out


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
