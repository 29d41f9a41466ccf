"""Reusable pydantic field types for the config: durations and caps."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BeforeValidator,
    PlainSerializer,
    WithJsonSchema,
)

from syncd.core.rules import Limit, TagSpec, TagTemplate, parse_limit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """`90`, `"90s"`, `"15m"`, `"1h"`, `"7d"` -> seconds (float)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 15m, 1h; got {value!r}")
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


# The JSON Schema says what the file may hold (what editors check), not the parsed
# float or Limit: `interval: 1h` and `max_deactivations: "10%"` are correct files.
_DURATION_SCHEMA = {"anyOf": [
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"}],
    "examples": ["30s", "15m", "1h"]}
_LIMIT_SCHEMA = {"anyOf": [
    {"type": "integer", "minimum": 0},
    {"type": "string", "pattern": r"^\s*(\d+|\d+(\.\d+)?\s*%)\s*$"}],
    "examples": ["10%", 25]}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda s: f"{s:g}s", return_type=str),
    WithJsonSchema(_DURATION_SCHEMA, mode="validation"),
]


LimitValue = Annotated[
    Limit,
    BeforeValidator(parse_limit),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(_LIMIT_SCHEMA, mode="validation"),
]



__all__ = ["Duration", "Limit", "LimitValue", "TagSpec", "TagTemplate", "parse_duration",
           "parse_limit"]
