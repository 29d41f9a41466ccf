"""Config keys every source shares: identity, mapping templates, safety switches."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncd.config.types import TagSpec


class SourceConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="unique name, used in logs and metrics")
    end_user: str = Field(
        min_length=1,
        description="template for the Nebuly id, e.g. '{mail}' or '{sAMAccountName}@corp.example'",
    )
    tags: dict[str, TagSpec] = Field(
        default_factory=dict, description="tag key -> template such as '{department}'"
    )
    active_from: str | None = Field(
        default=None,
        description="template for active_from (an ISO date/time); default: the date of insert",
    )
    active_to: str | None = Field(
        default=None, description="template for a planned end of access (an ISO date/time)"
    )
    date_format: str | None = Field(
        default=None,
        description="strptime format of active_from/active_to values, e.g. '%d/%m/%Y'; default: "
        "ISO dates, LDAP generalized time and AD FILETIME are recognised",
    )
    exclude_ids: list[str] = Field(
        default_factory=list,
        description="regular expressions; ids matching any are left out (e.g. '^svc-')",
    )
    allow_empty: bool = Field(
        default=False,
        description="accept a read with zero users (otherwise the run aborts before writing)",
    )

    @field_validator("exclude_ids")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return patterns
