"""The Graph stand-in's enterprise applications: service principals, app role assignments,
group members, and `directoryObjects/getByIds`.

Kept apart from data.py (users and the page cache) so each stays small. Rows
are built here and paged by the same PageCache as /users, so paging, faults
and `$top` behave the same on every collection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from standins.entra.data import Directory, QueryError, parse_select

DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"  # Graph's "Default Access" role id
_SP_SELECT = ("id", "appId", "displayName", "appRoles")
_ASSIGNMENT_PROPS = ("id", "appRoleId", "createdDateTime", "principalDisplayName",
                     "principalId", "principalType", "resourceDisplayName", "resourceId")
_SP_FILTER = re.compile(r"^\s*(appId|id)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


@dataclass(slots=True)
class Assignment:
    principal_id: str
    principal_type: str  # "User" | "Group" | "ServicePrincipal"
    created: str  # ISO date-time, as Graph writes createdDateTime
    app_role_id: str = DEFAULT_ACCESS
    id: str = ""


@dataclass(slots=True)
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "appId": self.app_id, "displayName": self.display_name,
                "appRoles": self.app_roles}

    def assignment_rows(self) -> list[dict[str, Any]]:
        return [{
            "id": a.id or f"asg-{i}", "appRoleId": a.app_role_id, "createdDateTime": a.created,
            "principalDisplayName": a.principal_id, "principalId": a.principal_id,
            "principalType": a.principal_type, "resourceDisplayName": self.display_name,
            "resourceId": self.id,
        } for i, a in enumerate(self.assignments)]


def app_role(role_id: str, value: str, display_name: str | None = None) -> dict[str, Any]:
    return {"id": role_id, "value": value, "displayName": display_name or value,
            "allowedMemberTypes": ["User"], "isEnabled": True, "description": value}


def service_principal_rows(
    sps: list[ServicePrincipal], filter_: str | None
) -> list[dict[str, Any]]:
    """GET /servicePrincipals with `$filter=appId eq '...'` or `id eq '...'` (or none)."""
    if not filter_:
        return [sp.as_json() for sp in sps]
    match = _SP_FILTER.match(filter_)
    if not match:
        raise QueryError("Request_UnsupportedQuery", f"Unsupported filter: {filter_!r}")
    prop, value = match.group(1).lower(), match.group(2)
    return [sp.as_json() for sp in sps
            if (sp.app_id if prop == "appid" else sp.id).lower() == value.lower()]


def generic_select(text: str | None, known: tuple[str, ...]) -> list[str]:
    """$select over a non-user type: unknown names are a 400, as in Graph."""
    if not text:
        return list(known)
    by_lower = {k.lower(): k for k in known}
    out = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name.lower() not in by_lower:
            raise QueryError("Request_BadRequest",
                             f"Could not find a property named '{name}'.")
        out.append(by_lower[name.lower()])
    return out


def sp_select(text: str | None) -> list[str]:
    return generic_select(text, _SP_SELECT)


def assignment_select(text: str | None) -> list[str]:
    return generic_select(text, _ASSIGNMENT_PROPS)


def direct_member_users(directory: Directory, group_id: str) -> list[dict[str, Any]]:
    """/groups/{id}/members/microsoft.graph.user: direct members only, users only."""
    group = directory.groups[group_id]
    by_id = directory.user_index()
    return [by_id[uid] for uid in group.members if uid in by_id]


def users_by_ids(directory: Directory, body: dict[str, Any], select_text: str | None,
                 ) -> list[dict[str, Any]]:
    """POST /directoryObjects/getByIds, for users: up to 1000 ids, unknown ids left out.

    Without $select, v1.0 returns only the default subset of user properties.
    """
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        raise QueryError("Request_BadRequest", "ids: between 1 and 1000 object ids are required.")
    types = [str(t).lower() for t in body.get("types") or ["user"]]
    select = parse_select(select_text)
    by_id = directory.user_index()
    rows = []
    if "user" in types:
        for oid in ids:
            user = by_id.get(str(oid))
            if user is not None:
                row: dict[str, Any] = {"@odata.type": "#microsoft.graph.user"}
                row.update({name: user.get(name) for name in select})
                rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class Rows:
    """One collection answer before paging: rows, the columns to keep, eq filters."""

    rows: list[dict[str, Any]]
    select: list[str]
    filters: list[tuple[str, Any]]
    context: str


def not_found(object_id: str) -> QueryError:
    return QueryError("Request_ResourceNotFound",
                      f"Resource '{object_id}' does not exist or one of its queried "
                      "reference-property objects are not present.", status=404)


def _sp(directory: Directory, key: str) -> ServicePrincipal:
    """/servicePrincipals/{id} or /servicePrincipals(appId='{appId}')."""
    match = re.fullmatch(r"\(appId='([^']*)'\)", key)
    for sp in directory.service_principals:
        if (match and sp.app_id == match.group(1)) or (not match and sp.id == key):
            return sp  # type: ignore[no-any-return]
    raise not_found(match.group(1) if match else key)


def collection(directory: Directory, segments: list[str], query: dict[str, str]) -> Rows:
    """Every GET collection the stand-in serves, by path segments after /v1.0."""
    from standins.entra.data import parse_filter

    select = query.get("$select")
    if segments == ["users"]:
        return Rows(directory.users, parse_select(select), parse_filter(query.get("$filter")),
                    "users")
    if len(segments) == 4 and segments[0] == "groups" and segments[3] in (
            "microsoft.graph.user", "graph.user") and segments[2] in (
            "transitiveMembers", "members"):
        if segments[1] not in directory.groups:
            raise not_found(segments[1])
        if query.get("$filter"):
            # Graph needs ConsistencyLevel: eventual for filters on members.
            raise QueryError("Request_UnsupportedQuery", "Unsupported Query.")
        users = (directory.transitive_users(segments[1]) if segments[2] == "transitiveMembers"
                 else direct_member_users(directory, segments[1]))
        return Rows(users, parse_select(select), [], "directoryObjects/microsoft.graph.user")
    if segments == ["servicePrincipals"]:
        rows = service_principal_rows(directory.service_principals, query.get("$filter"))
        return Rows(rows, sp_select(select), [], "servicePrincipals")
    if len(segments) == 3 and segments[0] == "servicePrincipals" \
            and segments[2] == "appRoleAssignedTo":
        if query.get("$filter"):
            raise QueryError("Request_UnsupportedQuery", "Unsupported Query.")
        sp = _sp(directory, segments[1])
        return Rows(sp.assignment_rows(), assignment_select(select), [],
                    f"servicePrincipals('{sp.id}')/appRoleAssignedTo")
    raise QueryError("BadRequest", f"Resource not found for the segment '{segments[-1]}'.")
