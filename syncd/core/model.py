"""Value types shared by every stage of a run: records read, people desired, users held."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from syncd.core.ids import IdCase, id_key, normalise_id

Tags = Mapping[str, str]


class Action(StrEnum):
    """What a change does to one Nebuly user. The values are the words run
    records, plan files and logs have always used."""

    INSERT = "insert"
    UPDATE = "update"
    REACTIVATE = "reactivate"
    DEACTIVATE = "deactivate"
    DELETE = "delete"
    # Only in run records written by older versions: an insert that met an
    # existing user and replaced values nobody read. Rollback leaves it alone.
    OVERWRITE = "overwrite"

    @property
    def destructive(self) -> bool:
        return self in (Action.DEACTIVATE, Action.DELETE)


@dataclass(frozen=True, slots=True)
class NebulyUser:
    """One roster entry as Nebuly holds it (or as syncd will write it)."""

    end_user: str
    tags: Tags
    active_from: date | None = None
    active_to: date | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"end_user": self.end_user, "tags": dict(self.tags)}
        if self.active_from is not None:
            body["active_from"] = self.active_from.isoformat()
        # The update call replaces the whole record, so an explicit null is what
        # clears active_to for a returning person.
        body["active_to"] = self.active_to.isoformat() if self.active_to else None
        return body


@dataclass(frozen=True, slots=True)
class DesiredUser:
    """A person the sources say should have access, mapped to Nebuly's shape.

    `active_from`/`active_to` are set only when a source maps them; otherwise
    syncd sets `active_from` at insert and leaves it alone.
    """

    end_user: str
    tags: Tags
    source: str
    active_from: date | None = None
    active_to: date | None = None
    # Names of every source that produced this person (merge bookkeeping).
    sources: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Change:
    """One user before and after a planned update (insert: no before; delete: no after)."""

    before: NebulyUser
    after: NebulyUser

    @property
    def end_user(self) -> str:
        return self.after.end_user


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


def record(attributes: Mapping[str, str], origin: str) -> SourceRecord:
    """Build a SourceRecord, lower-casing attribute names."""
    return SourceRecord({k.lower(): v for k, v in attributes.items()}, origin)


__all__ = ["Action", "Change", "DesiredUser", "IdCase", "NebulyUser", "RecordProblem",
           "SourceRecord", "Tags", "id_key", "normalise_id", "record"]
