"""Reusable pydantic field types for the config: durations, percents, secrets, templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
)

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


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda s: f"{s:g}s", return_type=str),
    Field(json_schema_extra={"examples": ["30s", "15m", "1h"]}),
]


class Limit(BaseModel):
    """A cap given as a count (`25`) or a percentage of a whole (`"10%"`)."""

    model_config = ConfigDict(frozen=True)
    count: int | None = None
    percent: float | None = None

    def ceiling(self, whole: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return int(whole * self.percent / 100.0)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.percent:g}%"


def parse_limit(value: object) -> Limit:
    if isinstance(value, Limit):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a count such as 25 or a percentage such as '10%'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a count must be 0 or more")
        return Limit(count=value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                pct = float(text[:-1])
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage such as '10%'") from None
            if not 0 <= pct <= 100:
                raise ValueError("a percentage must be between 0% and 100%")
            return Limit(percent=pct)
        if text.isdigit():
            return Limit(count=int(text))
    raise ValueError(f"expected a count such as 25 or a percentage such as '10%'; got {value!r}")


LimitValue = Annotated[
    Limit,
    BeforeValidator(parse_limit),
    PlainSerializer(str, return_type=str),
    Field(json_schema_extra={"examples": ["10%", 25]}),
]


def read_secret(inline: SecretStr | None, file: Path | None, field: str) -> str:
    """Resolve a secret given inline or as a `*_file` path.

    Read on every call (not cached) so a rotated Kubernetes Secret mounted as a
    file is picked up by the next run.
    """
    if inline is not None:
        value = inline.get_secret_value()
        if not value:
            raise ValueError(f"{field}: is empty; set it or use {field}_file")
        return value
    if file is None:
        raise ValueError(f"{field}: not set; give {field} or {field}_file")
    try:
        value = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{field}_file: cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{field}_file: {file} is not UTF-8 text") from None
    if not value:
        raise ValueError(f"{field}_file: {file} is empty")
    return value


Transform = Literal["none", "lower", "upper", "strip"]


class TagTemplate(BaseModel):
    """Long form of a tag: a template plus what to do with its value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    template: str = Field(description="e.g. '{department}'")
    default: str | None = Field(
        default=None, description="used when an attribute in the template is missing or empty"
    )
    transform: Transform = "none"
    map: dict[str, str] = Field(
        default_factory=dict, description="value map applied after transform, e.g. {FR: EMEA}"
    )
    allow: list[str] | None = Field(
        default=None, description="only these values (after map) are kept; others become `other`")
    other: str = Field(default="other", description="the value that replaces disallowed ones")
    max_values: int | None = Field(
        default=None, ge=1,
        description="cap on distinct values across the roster: the most common are kept, the "
        "rest become `other`")
    max_length: int = Field(default=100, ge=1, le=10_000,
                            description="longer values are cut to this length")


TagSpec = str | TagTemplate
