"""What every source gives the engine, and how it says it failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One directory entry, flattened to string attributes.

    Keys are lower-case so templates match attribute names the way directories
    do (LDAP and Graph names are case-insensitive). Multi-valued and binary
    attributes are rendered to a single string by the source itself.
    `origin` locates the record for an admin: "roster.csv line 12", a DN, an id.
    """

    attributes: Mapping[str, str]
    origin: str


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A record that was reported and skipped; the rest of the read goes on.

    `attributes` holds what could still be read of it (lower-case keys): when
    they give the person's id, that person is known to exist and is protected
    from looking departed.
    """

    origin: str
    message: str
    attributes: Mapping[str, str] | None = None


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


class Source(Protocol):
    """A directory the engine can read. `read` returns everything or raises SourceError."""

    @property
    def name(self) -> str: ...

    def read(self) -> SourceRead: ...


def record(attributes: Mapping[str, str], origin: str) -> SourceRecord:
    """Build a SourceRecord, lower-casing attribute names."""
    return SourceRecord({k.lower(): v for k, v in attributes.items()}, origin)
