"""CSV export source: a header row names the attributes; UTF-8 with or without BOM."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from syncd.core.templates import unknown_attributes
from syncd.sources.base import (
    NO_PROGRESS,
    ReadProgress,
    RecordProblem,
    SourceError,
    SourceRead,
    SourceRecord,
)
from syncd.sources.csv.config import CsvSourceConfig

# An HR export with a multi-megabyte cell is broken; Python's default (128 KiB)
# would abort the whole read on it, so allow more. The record is kept: the mapper
# skips an over-long id and cuts an over-long tag, and a huge column that no
# template reads is harmless. Skipping the row here would make an existing
# person look departed.
_FIELD_LIMIT = 16 * 1024 * 1024
# Rows between two progress reports: a count and a compare per row, a call per chunk.
PROGRESS_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class CsvSource:
    config: CsvSourceConfig

    @property
    def name(self) -> str:
        return self.config.name

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        path = self.config.path
        csv.field_size_limit(_FIELD_LIMIT)
        try:
            with path.open(encoding=self.config.encoding, newline="") as handle:
                return self._parse(csv.reader(handle, delimiter=self.config.delimiter),
                                   progress)
        except FileNotFoundError:
            raise SourceError(self.name, f"{path}: file not found") from None
        except OSError as exc:
            raise SourceError(self.name, f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SourceError(self.name, (
                f"{path}: line {_first_undecodable_line(path, self.config.encoding)} is not "
                f"{self.config.encoding}; export the file as UTF-8, or set the file's "
                "encoding on the source (a Windows export is often encoding: cp1252)")) from None
        except csv.Error as exc:
            raise SourceError(self.name, f"{path}: malformed CSV: {exc}") from None

    def _parse(self, reader: csv.Iterator,  # type: ignore[name-defined]
               progress: ReadProgress) -> SourceRead:
        path = self.config.path
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(self.name, f"{path}: the file is empty (no header row)") from None
        columns = [name.strip().lower() for name in header]
        if not any(columns):
            raise SourceError(self.name, f"{path}: the header row is empty")
        if unknown := unknown_attributes(self.config, columns):
            # A typo in a template would otherwise map nothing for everyone: every
            # tag removed, or every record skipped for want of an id.
            hint = ""
            if len(columns) == 1 and (";" in header[0] or "\t" in header[0]):
                sep = ";" if ";" in header[0] else "\\t"
                hint = f"; the header is one column containing {sep!r}: set delimiter: '{sep}'"
            raise SourceError(self.name, (
                f"{path}: the header has no column for {', '.join(unknown)} (columns: "
                f"{', '.join(c for c in columns if c)}){hint}"))
        records: list[SourceRecord] = []
        problems: list[RecordProblem] = []
        name = path.name
        width = len(columns)
        append = records.append
        rows, report_at = 0, PROGRESS_ROWS
        for rows, row in enumerate(reader, 1):  # rows: also the count after the loop
            if rows == report_at:  # about 20 ns a row; a modulo costs twice that
                progress.page(PROGRESS_ROWS)
                report_at += PROGRESS_ROWS
            origin = f"{name} line {reader.line_num}"
            # The joined row is blank exactly when every cell is.
            if not "".join(row).strip():
                continue
            if len(row) != width:
                # An unquoted comma shifts only the fields after it: the leading
                # ones (often the id) are still right, and keep the person protected.
                problems.append(RecordProblem(
                    origin, f"has {len(row)} fields, the header has {width}; skipped",
                    dict(zip(columns, row, strict=False))))
                continue
            append(SourceRecord(dict(zip(columns, row, strict=True)), origin))
        if rows % PROGRESS_ROWS:
            progress.page(rows % PROGRESS_ROWS)
        return SourceRead(records, problems)


def _first_undecodable_line(path: Path, encoding: str) -> int | str:
    """Where the decoding failed, as an admin looks for it (the decoder's byte offset
    is relative to a read buffer, not to the file)."""
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode(encoding)
                except UnicodeDecodeError:
                    return number
    except OSError:
        pass
    return "?"
