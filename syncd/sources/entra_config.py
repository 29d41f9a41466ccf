"""Config of the Microsoft Entra ID source (no msgraph import here: config loads fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from syncd.sources.config_base import SourceConfigBase


class EntraSourceConfig(SourceConfigBase):
    type: Literal["entra"]
    tenant_id: str
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    groups: list[str] = Field(default_factory=list)
