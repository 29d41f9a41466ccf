"""Value types of the rules syncd applies: how a tag is mapped, what a cap is.

Pure (no I/O): the config validates into these, and the core computes with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class Mode(StrEnum):
    """What a run may do: external-dns's policies, as filters over one computed plan."""

    SYNC = "sync"  # insert, update, deactivate
    UPSERT_ONLY = "upsert-only"  # never deactivate or delete
    CREATE_ONLY = "create-only"  # only insert


class Departed(StrEnum):
    """What happens to a person who left: their active_to is set, or they are deleted."""

    DEACTIVATE = "deactivate"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    mode: Mode = Mode.SYNC
    departed: Departed = Departed.DEACTIVATE
    # Tag keys the config maps: only these are syncd's to change.
    managed_tag_keys: frozenset[str] = frozenset()
    prune_tags: bool = False
    # (key, value): manage only users carrying it; stamped on users syncd inserts.
    owner_tag: tuple[str, str] | None = None
    # Departure grace: missing from the sources for this many consecutive
    # successful runs (this one included) and this many days before active_to is set.
    grace_runs: int = 1
    grace_days: int = 0

    @property
    def has_grace(self) -> bool:
        return self.grace_runs > 1 or self.grace_days > 0
