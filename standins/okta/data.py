"""The Okta stand-in's org: users (Okta's user object), groups, one or more apps.

Users look like GET /api/v1/users items: id, status, created, activated,
statusChanged, lastLogin, lastUpdated, passwordChanged, type, profile,
credentials, _links. An app's assignments are direct (scope USER) or through
an assigned group (scope GROUP); a user assigned both ways shows as USER,
as in Okta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "Support", "Legal")
COUNTRIES = ("FR", "DE", "US", "IT", "ES", "GB")


def user_id(i: int) -> str:
    return f"00u{i:07d}"


def make_user(i: int, status: str = "ACTIVE", domain: str = "acme.example") -> dict[str, Any]:
    login = f"user{i}@{domain}"
    return {
        "id": user_id(i), "status": status, "created": "2024-01-15T09:30:00.000Z",
        "activated": "2024-01-15T09:31:00.000Z", "statusChanged": "2024-01-15T09:31:00.000Z",
        "lastLogin": "2026-11-20T08:00:00.000Z", "lastUpdated": "2026-10-01T12:00:00.000Z",
        "passwordChanged": "2026-09-01T12:00:00.000Z", "type": {"id": "oty1default"},
        "profile": {
            "login": login, "email": login, "firstName": "User", "lastName": str(i),
            "department": DEPARTMENTS[i % len(DEPARTMENTS)],
            "countryCode": COUNTRIES[i % len(COUNTRIES)], "title": "Engineer",
            "employeeNumber": str(10000 + i), "mobilePhone": None,
        },
        "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"https://acme.okta.com/api/v1/users/{user_id(i)}"}},
    }


def make_users(n: int, statuses: dict[int, str] | None = None) -> list[dict[str, Any]]:
    statuses = statuses or {}
    return [make_user(i, statuses.get(i, "ACTIVE")) for i in range(n)]


@dataclass(slots=True)
class App:
    users: list[str] = field(default_factory=list)  # directly assigned user ids
    groups: list[str] = field(default_factory=list)  # assigned group ids
    assigned: str = "2025-03-01T10:00:00.000Z"  # when (created of each app user)


@dataclass(slots=True)
class Org:
    users: list[dict[str, Any]]
    groups: dict[str, list[str]] = field(default_factory=dict)  # group id -> user ids
    apps: dict[str, App] = field(default_factory=dict)
    _by_id: dict[str, dict[str, Any]] = field(init=False, repr=False)
    _listed: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {u["id"]: u for u in self.users}

    def user(self, uid: str) -> dict[str, Any] | None:
        return self._by_id.get(uid)

    def listed_users(self) -> list[dict[str, Any]]:
        """GET /api/v1/users without a search: everyone but DEPROVISIONED.

        Computed on the first call (500 pages of a 100,000-user org would filter
        it 500 times); a user deprovisioned afterwards is still listed.
        """
        if self._listed is None:
            self._listed = [u for u in self.users if u["status"] != "DEPROVISIONED"]
        return self._listed

    def group_users(self, group_id: str) -> list[dict[str, Any]]:
        return [self._by_id[uid] for uid in self.groups[group_id] if uid in self._by_id]

    def app_users(self, app_id: str, expand: bool) -> list[dict[str, Any]]:
        """GET /api/v1/apps/{id}/users: one app user per assigned person."""
        app = self.apps[app_id]
        scopes: dict[str, str] = {}
        for group in app.groups:
            for uid in self.groups.get(group, []):
                scopes.setdefault(uid, "GROUP")
        for uid in app.users:
            scopes[uid] = "USER"
        out = []
        for uid in sorted(scopes):
            user = self._by_id.get(uid)
            if user is None:
                continue
            app_user: dict[str, Any] = {
                "id": uid, "externalId": None, "created": app.assigned,
                "lastUpdated": app.assigned, "scope": scopes[uid], "status": "ACTIVE",
                "statusChanged": app.assigned, "syncState": "DISABLED",
                "credentials": {"userName": user["profile"]["login"]}, "profile": {},
                "_links": {"user": {"href": f"https://acme.okta.com/api/v1/users/{uid}"}},
            }
            if expand:
                app_user["_embedded"] = {"user": user}
            out.append(app_user)
        return out
