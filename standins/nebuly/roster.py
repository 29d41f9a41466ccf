"""The stand-in's in-memory roster: validation and insert/update/delete rules.

Pure logic with no locking or I/O; `standin.py` serialises access to it.
Stored records are never mutated in place (a write swaps in a new dict), so
the server may encode a snapshot of them outside its lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

ExistingInsert = Literal["omit", "409", "upsert"]
MissingUpdate = Literal["omit", "404", "upsert"]

WireUser = dict[str, Any]

# date.fromisoformat also takes "20260101" and week dates; the contract says
# `YYYY-MM-DD`, and the stand-in should be no more lenient than Nebuly may be.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_iso_date(value: object) -> bool:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def clean_user(raw: object) -> WireUser | None:
    """The stored form of a user from a write request, or None if invalid.

    `active_from` is required on update too: update replaces the whole record.
    Unknown fields are dropped rather than rejected, as most APIs do.
    """
    if not isinstance(raw, dict):
        return None
    end_user = raw.get("end_user")
    tags = raw.get("tags")
    active_to = raw.get("active_to")
    if not isinstance(end_user, str) or not end_user.strip():
        return None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        return None
    if not _is_iso_date(raw.get("active_from")):
        return None
    if active_to is not None and not _is_iso_date(active_to):
        return None
    return {
        "end_user": end_user,
        "tags": dict(tags),
        "active_from": raw["active_from"],
        "active_to": active_to,
    }


def with_timestamps(user: WireUser) -> WireUser:
    """Dates rewritten as midnight-UTC timestamps, as some servers return them."""
    out = dict(user)
    for key in ("active_from", "active_to"):
        value = out.get(key)
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            out[key] = f"{value}T00:00:00Z"
    return out


@dataclass(frozen=True)
class WriteResult:
    status: int
    body: dict[str, Any]
    changed: bool


class Roster:
    """Users keyed by `end_user` exactly as sent: case-sensitive on purpose,
    because Nebuly does not document otherwise and syncd must cope either way."""

    def __init__(self) -> None:
        self._users: dict[str, WireUser] = {}

    def __len__(self) -> int:
        return len(self._users)

    def replace_all(self, users: list[WireUser]) -> None:
        for user in users:
            if not isinstance(user, dict) or not isinstance(user.get("end_user"), str):
                raise ValueError("every user needs a string end_user")
        self._users = {user["end_user"]: user for user in users}

    def snapshot(self) -> list[WireUser]:
        return list(self._users.values())

    def insert(self, raw_users: list[object], mode: ExistingInsert) -> WriteResult:
        return self._write(raw_users, insert=True, mode=mode)

    def update(self, raw_users: list[object], mode: MissingUpdate) -> WriteResult:
        return self._write(raw_users, insert=False, mode=mode)

    def delete(self, ids: list[str]) -> WriteResult:
        deleted = sum(1 for end_user in ids if self._users.pop(end_user, None) is not None)
        return WriteResult(200, {"message": f"deleted {deleted} users"}, changed=deleted > 0)

    def _write(self, raw_users: list[object], *, insert: bool, mode: str) -> WriteResult:
        # Decide every user before applying any, so the strict modes (409/404)
        # can fail the whole request with nothing applied.
        planned: list[WireUser] = []
        in_batch: set[str] = set()
        for raw in raw_users:
            user = clean_user(raw)
            if user is None:
                continue
            key = user["end_user"]
            exists = key in self._users or key in in_batch
            if exists == insert:  # an insert that exists, or an update that does not
                if mode == "omit":
                    continue
                if mode != "upsert":
                    what = "already exists" if insert else "not found"
                    return WriteResult(
                        409 if insert else 404,
                        {"detail": f"end_user {what}: {key}"},
                        changed=False,
                    )
            planned.append(user)
            in_batch.add(key)
        for user in planned:
            self._users[user["end_user"]] = user
        return WriteResult(200, {"users": planned}, changed=bool(planned))
