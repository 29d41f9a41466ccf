"""The Okta source against the Okta stand-in: scope, eligibility, paging, auth, templates."""

from __future__ import annotations

import math

from syncd.sources.okta.config import OktaStatus
from syncd.sources.okta.source import OktaSource
from tests.conftest_okta import (
    APP,
    APP_DIRECT,
    ASSIGNED,
    N_USERS,
    PILOT,
    SALES,
    Okta,
    logins,
    okta,
    okta_server,
    status,
)

__all__ = ["okta", "okta_server"]  # fixtures used by name


def read_logins(okta: Okta, **overrides: object) -> dict[str, dict[str, str]]:
    result = OktaSource(okta.config(**overrides)).read()
    assert not result.problems
    return {r.attributes["profile.login"]: dict(r.attributes) for r in result.records}


def test_whole_org_keeps_exactly_the_people_with_access(okta: Okta) -> None:
    users = read_logins(okta)
    assert set(users) == logins(range(N_USERS))
    # Locked out and expired passwords still have access; the others do not.
    assert status(42) == "LOCKED_OUT" and "user42@acme.example" in users
    assert status(36) == "PASSWORD_EXPIRED" and "user36@acme.example" in users
    for i in (49, 60, 96):  # SUSPENDED, STAGED, DEPROVISIONED
        assert f"user{i}@acme.example" not in users
    # Paging: Okta lists everyone but DEPROVISIONED, 100 a page, by Link rel="next".
    listed = sum(1 for i in range(N_USERS) if status(i) != "DEPROVISIONED")
    assert okta.standin.counters["pages"] == math.ceil(listed / 100)
    afters = [q.get("after") for path, q in okta.standin.seen if path == "/api/v1/users"]
    assert afters[0] is None and afters[1:] == [str(100 * n) for n in range(1, len(afters))]


def test_dotted_paths_reach_nested_values(okta: Okta) -> None:
    user = read_logins(okta)["user7@acme.example"]
    assert user["profile.email"] == "user7@acme.example"
    assert user["profile.department"] == "Sales" and user["status"] == "ACTIVE"
    assert user["id"] == "00u0000007"
    # Only what templates name (and the id, status and login) is taken.
    assert set(user) == {"id", "status", "profile.login", "profile.email",
                         "profile.department", "profile.countrycode"}


def test_statuses_are_configurable(okta: Okta) -> None:
    users = read_logins(okta, statuses=[OktaStatus.ACTIVE, OktaStatus.SUSPENDED])
    assert "user49@acme.example" in users  # suspended, asked for
    assert "user42@acme.example" not in users  # locked out, not asked for


def test_app_scope_covers_direct_and_group_assignments(okta: Okta) -> None:
    users = read_logins(okta, app=APP)
    assert set(users) == logins(set(range(100)) | set(APP_DIRECT))
    assert users["user200@acme.example"]["assignmentscope"] == "USER"
    assert users["user5@acme.example"]["assignmentscope"] == "USER"  # direct and via the group
    assert users["user6@acme.example"]["assignmentscope"] == "GROUP"
    assert users["user6@acme.example"]["assigneddatetime"] == ASSIGNED
    seen = [q for path, q in okta.standin.seen if path == f"/api/v1/apps/{APP}/users"]
    assert seen and all(q["expand"] == "user" for q in seen)


def test_groups_scope_is_the_union_of_the_groups(okta: Okta) -> None:
    users = read_logins(okta, groups=[PILOT, SALES])
    assert set(users) == logins(range(150))
    assert not any("assignmentscope" in u for u in users.values())


def test_app_and_groups_together_are_a_union(okta: Okta) -> None:
    users = read_logins(okta, app=APP, groups=[SALES])
    assert set(users) == logins(set(range(150)) | set(APP_DIRECT))
    # Found through the app first: the app's attributes stay with the person.
    assert users["user95@acme.example"]["assignmentscope"] == "GROUP"


def test_oauth_service_app_with_private_key_jwt(okta: Okta) -> None:
    users = read_logins(okta, oauth=True, groups=[PILOT, SALES])
    assert set(users) == logins(range(150))
    assert okta.standin.counters["tokens"] == 1  # one token for every page
    assert okta.standin.counters["unauthorized"] == 0

