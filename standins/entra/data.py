"""The Graph stand-in's directory: users, nested groups, and Graph's query semantics.

Pages are computed once per query and kept encoded (msgspec), so 100,000
users are served about as fast as the loopback interface carries them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgspec

from syncd.sources.entra.attrs import USER_PROPERTIES

MAX_TOP = 999
DEFAULT_TOP = 100
# What Graph returns for a user when no $select is given.
DEFAULT_SELECT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)
_KNOWN = {name.lower(): name for name in USER_PROPERTIES}
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+(true|false|null|'(?:[^']|'')*')\s*$", re.IGNORECASE)
_DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "Support", "Legal")
_COUNTRIES = ("FR", "DE", "US", "IT", "ES", "GB")
_TITLES = ("Engineer", "Manager", "Analyst", "Director", "Consultant")


class QueryError(Exception):
    """A query Graph would answer with 400 Bad Request (or `status`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(slots=True)
class Group:
    members: list[str] = field(default_factory=list)  # user ids
    subgroups: list[str] = field(default_factory=list)  # group ids (nested)


@dataclass(slots=True)
class Directory:
    """Users as Graph returns them (camelCase keys) and groups."""

    users: list[dict[str, Any]]
    groups: dict[str, Group] = field(default_factory=dict)
    # apps.ServicePrincipal objects (typed Any: apps.py imports this module).
    service_principals: list[Any] = field(default_factory=list)
    _by_id: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {u["id"]: u for u in self.users}

    def user_index(self) -> dict[str, dict[str, Any]]:
        return self._by_id

    def transitive_users(self, group_id: str) -> list[dict[str, Any]]:
        """Users in the group or any nested group, each once (cycles are safe)."""
        seen_groups: set[str] = set()
        seen_users: dict[str, dict[str, Any]] = {}
        stack = [group_id]
        while stack:
            gid = stack.pop()
            if gid in seen_groups or gid not in self.groups:
                continue
            seen_groups.add(gid)
            group = self.groups[gid]
            for uid in group.members:
                if uid in self._by_id:
                    seen_users.setdefault(uid, self._by_id[uid])
            stack.extend(reversed(group.subgroups))
        return list(seen_users.values())


def user_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def make_users(
    count: int, *, disabled_every: int = 0, guest_every: int = 0, start: int = 0
) -> list[dict[str, Any]]:
    """Deterministic users; every n-th is disabled / a guest when asked."""
    users: list[dict[str, Any]] = []
    for i in range(start, start + count):
        guest = bool(guest_every) and i % guest_every == guest_every - 1
        upn = f"guest{i}_ext.example#EXT#@contoso.example" if guest else f"user{i}@contoso.example"
        users.append({
            "id": user_id(i),
            "userPrincipalName": upn,
            "displayName": f"User {i}",
            "givenName": "User",
            "surname": str(i),
            "mail": f"user{i}@contoso.example",
            "department": _DEPARTMENTS[i % len(_DEPARTMENTS)],
            "country": _COUNTRIES[i % len(_COUNTRIES)],
            "jobTitle": _TITLES[i % len(_TITLES)],
            "employeeId": f"E{i:07d}",
            "officeLocation": None,
            "businessPhones": [],
            "accountEnabled": not (disabled_every and i % disabled_every == disabled_every - 1),
            "userType": "Guest" if guest else "Member",
        })
    return users


def parse_filter(text: str | None) -> list[tuple[str, Any]]:
    """`accountEnabled eq true and userType eq 'Member'` -> [(property, value), ...]."""
    if not text:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(part)
        if not match:
            raise QueryError("BadRequest", f"Invalid filter clause: {part!r}")
        name, raw = match.group(1), match.group(2)
        prop = _KNOWN.get(name.lower())
        if prop is None:
            raise QueryError("BadRequest", f"Invalid filter clause: no property {name!r}")
        value: Any
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lower() == "null":
            value = None
        else:
            value = raw[1:-1].replace("''", "'")
        clauses.append((prop, value))
    return clauses


def parse_select(text: str | None) -> list[str]:
    """$select -> property names in Graph's spelling (Graph matches them case-insensitively)."""
    if not text:
        return list(DEFAULT_SELECT)
    out = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        prop = _KNOWN.get(name.lower())
        if prop is None:
            if not name.lower().startswith("extension_"):
                raise QueryError(
                    "Request_BadRequest",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                )
            prop = name
        out.append(prop)
    return out


def parse_top(text: str | None) -> int:
    if text is None:
        return DEFAULT_TOP
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise QueryError(
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{text}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(text)


class PageCache:
    """Encoded pages per (base URL, path, query): computed on first use, then served as is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[tuple[Any, ...], list[bytes]] = {}
        self._encode = msgspec.json.Encoder().encode

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()

    def page(
        self, key: tuple[Any, ...], index: int, users: Iterable[dict[str, Any]], *,
        select: Sequence[str], filters: Sequence[tuple[str, Any]], top: int,
        next_url: str, context: str,
    ) -> bytes | None:
        """Page `index` of the query, or None past the end."""
        with self._lock:
            pages = self._pages.get(key)
            if pages is None:
                pages = self._build(users, select=select, filters=filters, top=top,
                                    next_url=next_url, context=context)
                self._pages[key] = pages
        return pages[index] if 0 <= index < len(pages) else None

    def _build(
        self, users: Iterable[dict[str, Any]], *, select: Sequence[str],
        filters: Sequence[tuple[str, Any]], top: int, next_url: str, context: str,
    ) -> list[bytes]:
        rows = [
            {name: user.get(name) for name in select}
            for user in users
            if all(user.get(prop) == value for prop, value in filters)
        ]
        pages = []
        count = max(1, -(-len(rows) // top))
        for i in range(count):
            body: dict[str, Any] = {"@odata.context": context}
            if i + 1 < count:
                body["@odata.nextLink"] = f"{next_url}&$skiptoken={skiptoken(i + 1)}"
            body["value"] = rows[i * top:(i + 1) * top]
            pages.append(self._encode(body))
        return pages


def skiptoken(index: int) -> str:
    # Opaque to clients, like Graph's; the index is recoverable for the stand-in.
    return f"X{index:08x}"


def page_index(token: str | None) -> int:
    if token is None:
        return 0
    if not re.fullmatch(r"X[0-9a-f]{8}", token):
        raise QueryError("Request_BadRequest", "Invalid skip token.")
    return int(token[1:], 16)


def query_string(pairs: Sequence[tuple[str, str]]) -> str:
    """Graph writes `$` literally in next links; keep that shape."""
    return "&".join(f"{k}={quote(v, safe=',$')}" for k, v in pairs)
