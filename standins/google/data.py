"""The Google stand-in's Workspace account: users (Directory API user resources) and groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "Support", "Legal")
UNITS = ("/Engineering", "/Engineering/Platform", "/Sales", "/Sales/EMEA", "/Finance")
CUSTOMER_ID = "C01standin"


def google_id(i: int) -> str:
    return f"{100000000000000000000 + i}"


def make_user(i: int, *, suspended: bool = False, archived: bool = False,
              domain: str = "example.com", org_unit: str | None = None) -> dict[str, Any]:
    email = f"user{i}@{domain}"
    department = DEPARTMENTS[i % len(DEPARTMENTS)]
    return {
        "kind": "admin#directory#user", "id": google_id(i), "etag": f'"etag-{i}"',
        "primaryEmail": email,
        "name": {"givenName": "User", "familyName": str(i), "fullName": f"User {i}"},
        "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": "2026-11-20T08:00:00.000Z",
        "creationTime": "2024-01-15T09:30:00.000Z", "agreedToTerms": True,
        "suspended": suspended, "archived": archived, "changePasswordAtNextLogin": False,
        "ipWhitelisted": False,
        "emails": [{"address": email, "primary": True}],
        "organizations": [{"title": "Engineer", "primary": True, "customType": "",
                           "department": department, "costCenter": f"CC{i % 7}"}],
        "customerId": CUSTOMER_ID, "orgUnitPath": org_unit or UNITS[i % len(UNITS)],
        "isMailboxSetup": True, "isEnrolledIn2Sv": False, "isEnforcedIn2Sv": False,
        "includeInGlobalAddressList": True,
    }


def make_users(n: int, *, suspended: frozenset[int] = frozenset(),
               archived: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    return [make_user(i, suspended=i in suspended, archived=i in archived) for i in range(n)]


@dataclass(slots=True)
class Group:
    email: str
    members: list[str] = field(default_factory=list)  # user ids
    subgroups: list[str] = field(default_factory=list)  # group emails (nested)
    whole_customer: bool = False  # the "all users in the organisation" member


@dataclass(slots=True)
class Workspace:
    users: list[dict[str, Any]]
    groups: dict[str, Group] = field(default_factory=dict)  # by email
    domain: str = "example.com"
    _by_id: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {u["id"]: u for u in self.users}

    def group(self, key: str) -> Group | None:
        key = key.lower()
        for email, group in self.groups.items():
            if email.lower() == key or f"grp-{email}".lower() == key:
                return group
        return None

    def members(self, group: Group, derived: bool) -> list[dict[str, Any]]:
        """members.list: direct members (users, groups, the customer); with
        includeDerivedMembership, also the users of nested groups."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        if group.whole_customer:
            out.append({"kind": "admin#directory#member", "id": CUSTOMER_ID, "role": "MEMBER",
                        "type": "CUSTOMER", "status": "ACTIVE"})
        for uid in group.members:
            out.append(self._member(uid))
            seen.add(uid)
        for sub in group.subgroups:
            out.append({"kind": "admin#directory#member", "id": f"grp-{sub}", "email": sub,
                        "role": "MEMBER", "type": "GROUP", "status": "ACTIVE"})
        if derived:
            stack, visited = list(group.subgroups), {group.email}
            while stack:
                email = stack.pop()
                nested = self.groups.get(email)
                if nested is None or email in visited:
                    continue
                visited.add(email)
                for uid in nested.members:
                    if uid not in seen:
                        seen.add(uid)
                        out.append(self._member(uid))
                stack.extend(nested.subgroups)
        return out

    def _member(self, uid: str) -> dict[str, Any]:
        user = self._by_id.get(uid, {})
        status = "SUSPENDED" if user.get("suspended") else "ACTIVE"
        return {"kind": "admin#directory#member", "id": uid, "email": user.get("primaryEmail"),
                "role": "MEMBER", "type": "USER", "status": status}
