"""Config of the CSV source."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from syncd.sources.config_base import SourceConfigBase


class CsvSourceConfig(SourceConfigBase):
    type: Literal["csv"]
    path: Path = Field(description="CSV file with a header row, UTF-8 (a BOM is accepted)")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
