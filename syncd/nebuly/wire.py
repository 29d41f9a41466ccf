"""What goes over the wire to Nebuly's user-roster API, in both of its flavours.

The paths and verbs of each flavour, the request bodies, the roster a GET returns
(decoded with msgspec), which users a write's answer acknowledges (Nebuly may
apply part of a batch), and the detail of an error answer. No I/O: the transport
and its retries are in client.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import msgspec

from syncd.core.dates import parse_wire_date
from syncd.core.model import NebulyUser, id_key
from syncd.memory import gc_paused
from syncd.nebuly.errors import NebulyError

Api = Literal["platform-users", "eligible-users"]
Op = Literal["insert", "update"]


@dataclass(frozen=True, slots=True)
class Flavour:
    path: str
    insert: str
    update: str

    def method(self, op: Op) -> str:
        return self.insert if op == "insert" else self.update


# The two names of the API swap the insert and update verbs (see nebuly-api.md).
FLAVOURS: dict[str, Flavour] = {
    "platform-users": Flavour("/api/external/platform-users", insert="PUT", update="POST"),
    "eligible-users": Flavour("/api/external/eligible-users", insert="POST", update="PUT"),
}

# -- request bodies --------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def users_body(users: Sequence[NebulyUser]) -> bytes:
    """An insert or update: the users' full records."""
    return _encoder.encode({"users": [u.to_json() for u in users]})


def ids_body(end_users: Sequence[str]) -> bytes:
    """A delete: the ids alone."""
    return _encoder.encode({"users": list(end_users)})


# -- answers to writes -------------------------------------------------------------


def acknowledged_ids(body: bytes) -> set[str]:
    """The id_key of every user a successful write's answer lists: the users it applied.

    Entries may be user objects or bare ids; an answer of another shape acknowledges
    no one (the caller then tries those users with the other verb, or re-reads)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return set()
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        return set()
    ids = set()
    for item in users:
        if isinstance(item, dict) and isinstance(item.get("end_user"), str):
            ids.add(id_key(item["end_user"]))
        elif isinstance(item, str):
            ids.add(id_key(item))
    return ids


def status_message(what: str, status: int, body: bytes) -> str:
    """An error answer in words, with Nebuly's `detail` (cut short) when it gives one."""
    detail = ""
    try:
        data = msgspec.json.decode(body[:2000])
        if isinstance(data, dict) and isinstance(data.get("detail"), str):
            detail = f": {data['detail'][:200]}"
    except msgspec.DecodeError:
        pass
    return f"Nebuly answered HTTP {status} to {what}{detail}"


# -- the roster a GET returns ------------------------------------------------------


class _WireUser(msgspec.Struct, gc=False):
    end_user: str | None = None
    # Kept raw (a view of the body, no copy): a large roster repeats a few tag
    # combinations, so each distinct one is decoded once and the dict shared.
    tags: msgspec.Raw = msgspec.Raw(b"null")
    active_from: str | None = None
    active_to: str | None = None


class _WireRoster(msgspec.Struct, gc=False):
    users: list[_WireUser]


class _LooseUser(msgspec.Struct, gc=False):
    """Any JSON in any field: the second pass when one entry breaks the typed decode."""

    end_user: Any = None
    tags: msgspec.Raw = msgspec.Raw(b"null")
    active_from: Any = None
    active_to: Any = None


class _LooseRoster(msgspec.Struct, gc=False):
    users: list[_LooseUser]


_roster_decoder = msgspec.json.Decoder(_WireRoster)
_loose_decoder = msgspec.json.Decoder(_LooseRoster)
_tags_decoder = msgspec.json.Decoder(dict[str, Any] | None)


@dataclass(frozen=True, slots=True)
class Roster:
    users: list[NebulyUser]
    # Entries Nebuly returned that syncd cannot use (no id, bad date): left alone.
    unreadable: int = 0
    body_bytes: int = 0
    # id_key of the unusable entries that do have an id: the planner must not
    # insert or overwrite those people (they exist, we just cannot read them).
    unusable_ids: frozenset[str] = frozenset()


# Caches bounded so that a roster of all-distinct values cannot grow them without end.
_MAX_CACHED = 1 << 16


def decode_roster(body: bytes) -> Roster:
    """Nebuly's GET body -> NebulyUser list; entries without a usable id or date are counted.

    Large rosters repeat a few dates and tag combinations over and over, so equal
    tag objects and dates are decoded once and shared (they are never mutated),
    and each wire entry is freed as soon as it is converted: peak memory stays
    near one compact copy of the roster.
    """
    with gc_paused():
        return _decode_roster(body)


def _decode_roster(body: bytes) -> Roster:
    wire: _WireRoster | _LooseRoster
    try:
        wire = _roster_decoder.decode(body)
    except msgspec.ValidationError:
        # One odd entry (a numeric id, tags as a list) must not stop every run:
        # decode loosely and leave the entries syncd cannot use alone.
        try:
            wire = _loose_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise NebulyError(f"Nebuly's user list has an unexpected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise NebulyError(f"Nebuly's user list is not valid JSON: {exc}") from None
    items: list[_WireUser] | list[_LooseUser] = wire.users
    del wire
    items.reverse()  # pop() from the end frees each entry once converted, in order
    pop = items.pop
    users: list[NebulyUser] = []
    append = users.append
    unreadable = 0
    unusable: set[str] = set()
    dates: dict[str, date] = {}
    tag_dicts: dict[bytes, dict[str, str]] = {b"null": {}, b"{}": {}}
    while items:
        item = pop()
        end_user = item.end_user
        if not isinstance(end_user, str) or not end_user:
            # A number may still be someone's id as the app reports it.
            if isinstance(end_user, int | float) and not isinstance(end_user, bool):
                unusable.add(id_key(str(end_user)))
            unreadable += 1
            continue
        raw = bytes(item.tags)
        tags = tag_dicts.get(raw)
        if tags is None:
            tags = _decode_tags(raw)
            if tags is None:
                unreadable += 1
                unusable.add(id_key(end_user))
                continue
            if len(tag_dicts) < _MAX_CACHED:
                tag_dicts[raw] = tags
        try:
            active_from = _cached_date(item.active_from, dates)
            active_to = _cached_date(item.active_to, dates)
        except (ValueError, TypeError):
            unreadable += 1
            unusable.add(id_key(end_user))
            continue
        append(NebulyUser(end_user, tags, active_from, active_to))
    return Roster(users, unreadable, len(body), frozenset(unusable))


def _decode_tags(raw: bytes) -> dict[str, str] | None:
    """One user's `tags` JSON -> string values, nulls dropped; None when not an object."""
    try:
        decoded = _tags_decoder.decode(raw)
    except msgspec.ValidationError:
        return None
    return {str(k): str(v) for k, v in (decoded or {}).items() if v is not None}


def _cached_date(value: object, cache: dict[str, date]) -> date | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise TypeError("a date must be a string")
    found = cache.get(value)
    if found is None:
        # Dates or full timestamps may come back; the UTC calendar date is what we manage.
        found = parse_wire_date(value)
        if found is not None and len(cache) < _MAX_CACHED:
            cache[value] = found
    return found
