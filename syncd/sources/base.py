"""What every source gives the engine, and how it says it failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from syncd.core.model import RecordProblem, SourceRecord, record


@dataclass(frozen=True, slots=True)
class SourceRead:
    """A complete read of one source."""

    records: Sequence[SourceRecord]
    problems: Sequence[RecordProblem] = field(default_factory=tuple)


class SourceError(Exception):
    """The source could not be read completely. The run must write nothing.

    The message is shown to admins: it must name the source and what to do,
    and must never contain a secret.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source
        self.message = message


class ReadProgress(Protocol):
    """Told as a long read goes, so the run can report progress.

    Sources call `page` once per page (or chunk) they have received; the
    receiver decides how often to say something. It must be cheap: it runs on
    the read's hot path.
    """

    def page(self, records: int) -> None:
        """`records` more records (entries, users, rows) have been received."""


class NoProgress:
    """The receiver for reads nobody watches."""

    def page(self, records: int) -> None:
        pass


NO_PROGRESS: ReadProgress = NoProgress()


class Source(Protocol):
    """A directory the engine can read. `read` returns everything or raises SourceError."""

    @property
    def name(self) -> str: ...

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead: ...


__all__ = [
    "NO_PROGRESS", "NoProgress", "ReadProgress", "RecordProblem", "Source", "SourceError",
    "SourceRead", "SourceRecord", "record",
]
