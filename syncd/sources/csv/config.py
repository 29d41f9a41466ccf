"""Config of the CSV source."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from syncd.sources.config_base import SourceConfigBase


class CsvSourceConfig(SourceConfigBase):
    type: Literal["csv"]
    path: Path = Field(description="CSV file with a header row, UTF-8 (a BOM is accepted)")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = Field(
        default="utf-8-sig",
        description="text encoding of the file, e.g. cp1252 for a Windows export; default "
        "UTF-8 (a BOM is accepted)")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; e.g. utf-8, cp1252, latin-1, "
                             "utf-16") from None
        return value
