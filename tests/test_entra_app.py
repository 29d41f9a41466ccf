"""The Entra source's `app:` scope against the Graph stand-in: who is eligible, since when,
which reads it makes, and how it fails."""

from __future__ import annotations

import pytest

from standins.entra.data import user_id
from syncd.sources.base import SourceError, SourceRead
from syncd.sources.entra.source import EntraSource
from tests.conftest_entra_app import (
    AGENT,
    AGENT_SUB,
    CLIENT_SP,
    OTHER,
    SP_ID,
    AppTenant,
    app_tenant,
    upn,
)

__all__ = ["app_tenant"]  # fixtures used by name

# Direct members of the assigned group (minus user5 disabled, user6 a guest), user3
# (also direct), user15 and user16 (direct); not user17 (disabled), not agent-sub.
ELIGIBLE = {upn(i) for i in (0, 1, 2, 3, 4, 7, 8, 9, 15, 16)}


def read(tenant: AppTenant, **overrides: object) -> SourceRead:
    return EntraSource(tenant.config(**overrides)).read()


def by_upn(result: SourceRead) -> dict[str, dict[str, str]]:
    return {r.attributes["userprincipalname"]: dict(r.attributes) for r in result.records}


def test_assigned_users_directly_or_as_direct_group_members(app_tenant: AppTenant) -> None:
    users = by_upn(read(app_tenant))
    assert set(users) == ELIGIBLE
    # The earliest direct assignment; none for group-only access.
    assert users[upn(15)]["assigneddatetime"] == "2025-03-14T09:30:00Z"
    assert users[upn(3)]["assigneddatetime"] == "2025-01-02T10:00:00Z"
    assert "assigneddatetime" not in users[upn(0)]
    assert users[upn(16)]["department"] == "Support"  # the $select reached getByIds


def test_the_app_by_its_service_principal_object_id(app_tenant: AppTenant) -> None:
    assert set(by_upn(read(app_tenant, app=SP_ID))) == ELIGIBLE


def test_nested_group_members_only_with_the_option(app_tenant: AppTenant) -> None:
    nested = {upn(i) for i in range(10, 15)}
    assert not nested & set(by_upn(read(app_tenant)))
    assert set(by_upn(read(app_tenant, app_nested_groups=True))) == ELIGIBLE | nested


def test_guests_only_with_include_guests(app_tenant: AppTenant) -> None:
    assert set(by_upn(read(app_tenant, include_guests=True))) == ELIGIBLE | {upn(6)}


def test_a_service_principal_assignment_never_becomes_a_user(app_tenant: AppTenant) -> None:
    result = read(app_tenant, include_disabled=True, include_guests=True)
    assert CLIENT_SP not in {r.attributes["id"] for r in result.records}
    assert len(result.records) == len(ELIGIBLE) + 3  # + user5, user6 and user17
    by_ids = [s for s in app_tenant.standin.seen if s.path.endswith("getByIds")]
    assert len(by_ids) == 1  # the direct users in one bulk call, not one per user


def test_app_roles_by_name_or_id(app_tenant: AppTenant) -> None:
    admins = by_upn(read(app_tenant, app_roles=["Admin"]))
    assert set(admins) == {upn(15), upn(16)}
    # Only Admin assignments count towards the date under this filter.
    assert admins[upn(15)]["assigneddatetime"] == "2025-06-01T07:00:00Z"
    by_value = read(app_tenant, app_roles=["agent.admin", "aaaaaaaa-0000-0000-0000-000000000001"])
    assert set(by_upn(by_value)) == ELIGIBLE


def test_groups_and_exclude_groups_still_narrow(app_tenant: AppTenant) -> None:
    assert set(by_upn(read(app_tenant, groups=[AGENT]))) == ELIGIBLE - {upn(15), upn(16)}
    app_tenant.standin.directory.groups[OTHER].members.append(user_id(15))
    app_tenant.standin.cache.clear()
    assert set(by_upn(read(app_tenant, exclude_groups=[OTHER]))) == ELIGIBLE - {upn(15)}


def test_unassigning_and_leaving_the_group_remove_the_user(app_tenant: AppTenant) -> None:
    app_tenant.unassign(user_id(16))
    app_tenant.leave_group(AGENT, user_id(1))
    assert set(by_upn(read(app_tenant))) == ELIGIBLE - {upn(16), upn(1)}
    app_tenant.unassign(user_id(3))  # still a direct member of the assigned group
    users = by_upn(read(app_tenant))
    assert upn(3) in users and "assigneddatetime" not in users[upn(3)]


def test_one_bulk_read_with_the_templates_select(app_tenant: AppTenant) -> None:
    read(app_tenant, tags={"department": "{department}", "role": "{jobTitle}"})
    seen = app_tenant.standin.seen
    paths = [s.path for s in seen]
    assert paths == [
        "/v1.0/servicePrincipals",
        f"/v1.0/servicePrincipals/{SP_ID}/appRoleAssignedTo",
        f"/v1.0/groups/{AGENT}/members/graph.user",
        "/v1.0/directoryObjects/getByIds",
    ]
    select = set(seen[-1].query["$select"].split(","))
    assert {"department", "jobTitle", "accountEnabled", "userType"} <= select
    assert "assignedDateTime" not in select  # computed by syncd, not a user property
    assert set(seen[2].query["$select"].split(",")) == select


@pytest.mark.parametrize(("overrides", "message"), [
    ({"app": "99999999-9999-9999-9999-999999999999"},
     r"app 99999999-9999-9999-9999-999999999999: no enterprise application"),
    ({"app": "Agent"}, r"app 'Agent' is not an id"),
    ({"app_roles": ["Owner"]}, r"app_roles: Agent has no app role 'Owner' \(its roles: "
                               r"Agent.Admin, Agent.User\)"),
])
def test_a_wrong_app_or_role_fails_naming_it(app_tenant: AppTenant, overrides: dict[str, object],
                                             message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read(app_tenant, **overrides)


@pytest.mark.parametrize("after", [0, 1, 2, 3])  # each of the four reads in turn
def test_throttled_reads_are_retried(app_tenant: AppTenant, after: int) -> None:
    app_tenant.standin.throttle(429, retry_after=1, times=1, after=after)
    assert set(by_upn(read(app_tenant))) == ELIGIBLE
    assert app_tenant.standin.counters["status_429"] == 1


@pytest.mark.parametrize(("after", "what"), [
    (1, r"reading assignments of app 22222222-\S+ \(page 1\): connection .* failed"),
    (2, rf"reading members of group {AGENT} \(assigned to the app\) \(page 1\): connection"),
    (3, r"reading users assigned to the app \(getByIds from 1\) \(page 1\): connection"),
])
def test_a_failed_read_fails_the_source(app_tenant: AppTenant, after: int, what: str) -> None:
    app_tenant.standin.drop_page(after=after)
    with pytest.raises(SourceError, match=what):
        read(app_tenant)


def test_throttling_past_max_retries_fails_the_assignments_read(app_tenant: AppTenant) -> None:
    app_tenant.standin.throttle(503, retry_after=1, times=5, after=1)
    with pytest.raises(SourceError, match=r"Graph answered 503 reading assignments of app .* "
                                          r"after 1 retries"):
        read(app_tenant, max_retries=1)


def test_nested_subgroup_is_not_itself_assigned(app_tenant: AppTenant) -> None:
    # agent-sub's members count only through the option, never as an assigned group.
    app_tenant.standin.directory.groups[AGENT].subgroups.remove(AGENT_SUB)
    app_tenant.standin.cache.clear()
    assert set(by_upn(read(app_tenant, app_nested_groups=True))) == ELIGIBLE


@pytest.mark.parametrize(("overrides", "message"), [
    ({"app": None}, r"\{assignedDateTime\} needs app"),
    ({"app": None, "active_from": None, "app_roles": ["Admin"]}, r"app_roles .* need app"),
    ({"app": None, "active_from": None, "app_nested_groups": True}, r"need app"),
])
def test_app_keys_without_app_are_config_errors(app_tenant: AppTenant,
                                                overrides: dict[str, object],
                                                message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        app_tenant.config(**overrides)
