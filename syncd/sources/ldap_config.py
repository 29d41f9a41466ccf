"""Config of the LDAP / Active Directory source (no ldap3 import here: config loads fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from syncd.sources.config_base import SourceConfigBase


class LdapSourceConfig(SourceConfigBase):
    type: Literal["ldap"]
    url: str | list[str] = Field(description="ldaps://host:636 or a list tried in order")
    bind_dn: str | None = None
    bind_password: SecretStr | None = None
    bind_password_file: Path | None = None
    ca_file: Path | None = None
    base_dn: str | list[str]
    filter: str | None = None
    groups: list[str] = Field(default_factory=list)
    nested_groups: bool = True
