"""Fixtures for the `app:` scope tests: a small tenant with one enterprise application.

The directory: 30 users (user5 disabled, user6 a guest, user17 disabled). Groups:
  agent   users 0-9, nested: agent-sub (users 10-14)   -- assigned to the app
  other   users 20-24                                  -- not assigned
The app "Agent" (appId APP_ID, service principal object id SP_ID), roles User and Admin:
  agent group        User   2024-09-01
  user3 direct       User   2025-01-02 (also a member of agent)
  user15 direct      User   2025-03-14, and Admin 2025-06-01 (earliest: 2025-03-14)
  user16 direct      Admin  2025-05-05
  user17 direct      User   2025-02-02 (disabled)
  a service principal (a client app's identity), directly, and agent-sub is NOT assigned.
Each test gets its own stand-in: tests change assignments and memberships.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from standins.entra.apps import Assignment, ServicePrincipal, app_role
from standins.entra.data import Directory, Group, make_users, user_id
from standins.entra.server import GraphStandin
from syncd.sources.entra.config import EntraSourceConfig

APP_ID = "22222222-2222-2222-2222-222222222222"
SP_ID = "33333333-3333-3333-3333-333333333333"
CLIENT_SP = "44444444-4444-4444-4444-444444444444"
ROLE_USER = "aaaaaaaa-0000-0000-0000-000000000001"
ROLE_ADMIN = "aaaaaaaa-0000-0000-0000-000000000002"
AGENT, AGENT_SUB, OTHER = "group-agent", "group-agent-sub", "group-other"


def upn(i: int) -> str:
    return f"user{i}@contoso.example"


def agent_app() -> ServicePrincipal:
    return ServicePrincipal(SP_ID, APP_ID, "Agent", [
        app_role(ROLE_USER, "Agent.User", "User"), app_role(ROLE_ADMIN, "Agent.Admin", "Admin"),
    ], [
        Assignment(AGENT, "Group", "2024-09-01T08:00:00Z", ROLE_USER),
        Assignment(user_id(3), "User", "2025-01-02T10:00:00Z", ROLE_USER),
        Assignment(user_id(15), "User", "2025-06-01T07:00:00Z", ROLE_ADMIN),
        Assignment(user_id(15), "User", "2025-03-14T09:30:00Z", ROLE_USER),
        Assignment(user_id(16), "User", "2025-05-05T12:00:00Z", ROLE_ADMIN),
        Assignment(user_id(17), "User", "2025-02-02T12:00:00Z", ROLE_USER),
        Assignment(CLIENT_SP, "ServicePrincipal", "2024-01-01T00:00:00Z", ROLE_USER),
    ])


def tenant() -> Directory:
    users = make_users(30)
    users[5]["accountEnabled"] = False
    users[17]["accountEnabled"] = False
    users[6]["userType"] = "Guest"
    groups = {
        AGENT: Group([user_id(i) for i in range(10)], [AGENT_SUB]),
        AGENT_SUB: Group([user_id(i) for i in range(10, 15)]),
        OTHER: Group([user_id(i) for i in range(20, 25)]),
    }
    return Directory(users, groups, [agent_app()])


@dataclass(frozen=True)
class AppTenant:
    standin: GraphStandin

    @property
    def app(self) -> ServicePrincipal:
        sp: ServicePrincipal = self.standin.directory.service_principals[0]
        return sp

    def unassign(self, principal: str) -> None:
        self.app.assignments[:] = [a for a in self.app.assignments
                                   if a.principal_id != principal]
        self.standin.cache.clear()  # pages are cached per query

    def leave_group(self, group: str, member: str) -> None:
        self.standin.directory.groups[group].members.remove(member)
        self.standin.cache.clear()

    def config(self, **overrides: Any) -> EntraSourceConfig:
        identity = self.standin.identity
        data: dict[str, Any] = {
            "name": "agent", "type": "entra", "tenant_id": identity.tenant_id,
            "client_id": identity.client_id, "client_secret": identity.client_secret,
            "graph_url": self.standin.graph_url, "authority": self.standin.authority,
            "ca_file": str(self.standin.tls.ca_file), "app": APP_ID,
            "end_user": "{userPrincipalName}", "active_from": "{assignedDateTime}",
            "tags": {"department": "{department}"}, "max_retry_delay": "5s",
        }
        data.update(overrides)
        return EntraSourceConfig.model_validate(data)


@pytest.fixture
def app_tenant() -> Iterator[AppTenant]:
    with GraphStandin(tenant()) as standin:
        yield AppTenant(standin)
