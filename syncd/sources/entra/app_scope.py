"""The `app:` scope: the users who may use one enterprise application, and since when.

Entra grants an app to users assigned directly, and to the DIRECT members of
an assigned group; an assignment does not cascade to nested groups (Microsoft's
"assign users and groups to an application" documentation). So by default only
direct members count; `app_nested_groups: true` reads transitive members for
tenants that want them anyway.

Reads, each paged to the end through the source's pager (any failure is a
SourceError, nothing is written):
1. the service principal, by appId, then by object id;
2. its appRoleAssignedTo (who is assigned, to which role, since when);
3. per assigned group, its (direct) user members with the templates' $select;
4. the directly assigned users not already read, 1,000 per getByIds call.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncd.sources.base import SourceError, SourceRecord
from syncd.sources.entra.attrs import ASSIGNED

if TYPE_CHECKING:
    from kiota_abstractions.request_information import RequestInformation

    from syncd.sources.entra.config import EntraSourceConfig
    from syncd.sources.entra.graph import GraphSession

# getByIds takes at most 1,000 ids per call.
BY_IDS_CHUNK = 1000
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_SP_SELECT = ["id", "appId", "displayName", "appRoles"]
_ASSIGNMENT_SELECT = ["appRoleId", "createdDateTime", "principalId", "principalType"]

Pages = Callable[["RequestInformation", str], AsyncIterator[list[dict[str, Any]]]]
Gather = Callable[["RequestInformation", str, dict[str, SourceRecord]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Assignments:
    """Who the app is assigned to, after the app_roles filter."""

    app_name: str
    users: dict[str, str]  # user id -> earliest createdDateTime of a direct assignment
    groups: tuple[str, ...]
    ignored: int  # service principals (and anything else that is not a user or group)


async def resolve_app(config: EntraSourceConfig, graph: GraphSession,
                      pages: Pages) -> dict[str, Any]:
    """The app's service principal: `app` as an appId first, then as an object id."""
    app = (config.app or "").strip()
    if not _GUID.match(app):
        raise SourceError(config.name, (
            f"app {app!r} is not an id: give the application's appId (Application ID "
            "on the enterprise application's Overview page) or its Object ID"))
    for prop in ("appId", "id"):
        request = graph.service_principals_request(f"{prop} eq '{app}'", _SP_SELECT)
        async for page in pages(request, f"the service principal of app {app}"):
            if page:
                return page[0]
    raise SourceError(config.name, (
        f"app {app}: no enterprise application (service principal) with this appId or "
        f"object id in tenant {config.tenant_id}; check the id, and that the app is "
        "registered in this tenant (Enterprise applications, not only App registrations)"))


def role_ids(config: EntraSourceConfig, sp: dict[str, Any]) -> set[str] | None:
    """app_roles -> role ids (None: any role). A name the app does not have fails the run."""
    if not config.app_roles:
        return None
    roles = [r for r in sp.get("appRoles") or [] if isinstance(r, dict)]
    wanted: set[str] = set()
    for name in config.app_roles:
        key = name.strip().lower()
        match = [r for r in roles if key in (str(r.get("id", "")).lower(),
                                             str(r.get("value") or "").lower(),
                                             str(r.get("displayName") or "").lower())]
        if not match:
            known = ", ".join(sorted(str(r.get("value") or r.get("displayName") or r.get("id"))
                                     for r in roles)) or "none"
            raise SourceError(config.name, (
                f"app_roles: {sp.get('displayName') or config.app} has no app role "
                f"{name!r} (its roles: {known}); use a role's value, display name or id"))
        wanted.update(str(r["id"]).lower() for r in match if r.get("id"))
    return wanted


async def read_assignments(config: EntraSourceConfig, graph: GraphSession,
                           pages: Pages) -> Assignments:
    sp = await resolve_app(config, graph, pages)
    wanted = role_ids(config, sp)
    name = str(sp.get("displayName") or config.app)
    users: dict[str, str] = {}
    groups: dict[str, None] = {}
    ignored = 0
    request = graph.assigned_to_request(str(sp["id"]), _ASSIGNMENT_SELECT, config.page_size)
    async for page in pages(request, f"assignments of app {config.app}"):
        for assignment in page:
            if wanted is not None and str(assignment.get("appRoleId", "")).lower() not in wanted:
                continue
            principal = assignment.get("principalId")
            kind = assignment.get("principalType")
            if not isinstance(principal, str) or not principal:
                continue
            if kind == "User":
                created = assignment.get("createdDateTime")
                earlier = users.get(principal)
                if isinstance(created, str) and created and (not earlier or created < earlier):
                    users[principal] = created  # ISO UTC strings: text order is time order
                else:
                    users.setdefault(principal, earlier or "")
            elif kind == "Group":
                groups[principal] = None
            else:
                ignored += 1  # service principals (apps, managed identities) are not people
    return Assignments(name, users, tuple(groups), ignored)


async def collect_app_users(
    config: EntraSourceConfig, graph: GraphSession, select: list[str], pages: Pages,
    gather: Gather,
) -> tuple[dict[str, SourceRecord], Assignments]:
    """Assigned users (direct, or through a group) as records, keyed by user id."""
    assigned = await read_assignments(config, graph, pages)
    found: dict[str, SourceRecord] = {}
    for group_id in assigned.groups:
        request = graph.group_users_request(group_id, select, config.page_size,
                                            nested=config.app_nested_groups)
        await gather(request, f"members of group {group_id} (assigned to the app)", found)
    # Users already read through a group are not read again.
    direct = [uid for uid in assigned.users if uid not in found]
    for start in range(0, len(direct), BY_IDS_CHUNK):
        chunk = direct[start:start + BY_IDS_CHUNK]
        request = graph.users_by_ids_request(chunk, select)
        await gather(request, f"users assigned to the app (getByIds from {start + 1})", found)
    for uid, record in found.items():
        created = assigned.users.get(uid)
        if created:
            found[uid] = SourceRecord({**record.attributes, ASSIGNED: created},
                                      record.origin)
    return found, assigned
