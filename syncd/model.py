"""Value types shared by every stage of a run, and id normalisation."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

Tags = Mapping[str, str]


class IdCase(StrEnum):
    """How `end_user` ids are normalised before they are compared or sent.

    Nebuly does not document whether ids are case-sensitive; lower-casing by
    default means `Ann@X.com` and `ann@x.com` never become two users.
    """

    LOWER = "lower"
    PRESERVE = "preserve"


def normalise_id(raw: str, case: IdCase = IdCase.LOWER) -> str:
    """Trim, NFC-normalise and (by default) lower-case an id."""
    value = raw.strip()
    # ASCII is already NFC: skip the (costly) normalisation for the common case.
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    return value.lower() if case is IdCase.LOWER else value


def id_key(end_user: str) -> str:
    """Key used to match ids regardless of case (even with IdCase.PRESERVE)."""
    value = end_user.strip()
    # ASCII is already NFC, and this runs on millions of ids per large run.
    if value.isascii():
        return value.lower()
    # lower(), not casefold(): casefold makes straße@x.de and strasse@x.de one
    # key, though they are two mailboxes and two people.
    return unicodedata.normalize("NFC", value).lower()


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
