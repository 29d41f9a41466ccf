"""The Google source against the Google stand-in: scope, suspension, paging, templates."""

from __future__ import annotations

import math
from pathlib import Path

from standins.google.server import GoogleStandin
from syncd.sources.google.source import GoogleSource
from tests.conftest_google import (
    ADMIN,
    EVERYONE,
    N_USERS,
    PILOT,
    SALES_OPS,
    Google,
    account,
    emails,
    google,
    google_server,
    unit,
    workspace,
    write_key_file,
)

__all__ = ["google", "google_server"]  # fixtures used by name

EVERYONE_ACTIVE = emails(range(N_USERS))


def read_emails(google: Google, **overrides: object) -> dict[str, dict[str, str]]:
    result = GoogleSource(google.config(**overrides)).read()
    assert not result.problems
    return {r.attributes["primaryemail"]: dict(r.attributes) for r in result.records}


def test_whole_account_leaves_suspended_and_archived_out(google: Google) -> None:
    users = read_emails(google)
    assert set(users) == EVERYONE_ACTIVE
    assert "user49@example.com" not in users and "user70@example.com" not in users
    # Paging: 200 a page, nextPageToken followed to the end.
    assert google.standin.counters["pages"] == math.ceil(N_USERS / 200)
    tokens = [q.get("pageToken") for path, q in google.standin.seen]
    assert tokens == [None, *(str(200 * n) for n in range(1, math.ceil(N_USERS / 200)))]
    assert all(q["customer"] == "my_customer" for _, q in google.standin.seen)
    assert google.standin.subjects == [ADMIN]  # domain-wide delegation impersonates the admin


def test_dotted_paths_reach_lists_and_objects(google: Google) -> None:
    tags = {"department": "{organizations.0.department}", "name": "{name.fullName}",
            "mail": "{emails.0.address}", "unit": "{orgUnitPath}"}
    user = read_emails(google, tags=tags)["user7@example.com"]
    assert user == {"id": "100000000000000000007", "primaryemail": "user7@example.com",
                    "organizations.0.department": "Sales", "name.fullname": "User 7",
                    "emails.0.address": "user7@example.com", "orgunitpath": "/Sales"}


def test_suspended_and_archived_can_be_included(google: Google) -> None:
    users = read_emails(google, include_suspended=True, include_archived=True)
    assert len(users) == N_USERS


def test_group_scope_includes_nested_members(google: Google) -> None:
    users = read_emails(google, groups=[PILOT])
    assert set(users) == emails(set(range(50)) | set(range(300, 320)))
    members = [q for path, q in google.standin.seen if path.endswith("/members")]
    assert members and all(q["includeDerivedMembership"] == "true" for q in members)


def test_group_of_the_whole_customer_is_everyone(google: Google) -> None:
    assert set(read_emails(google, groups=[EVERYONE])) == EVERYONE_ACTIVE


def test_org_unit_scope_includes_units_below_and_not_siblings(google: Google) -> None:
    users = read_emails(google, org_units=["/Sales"])
    expected = {i for i in range(N_USERS) if unit(i) in ("/Sales", "/Sales/EMEA")}
    assert set(users) == emails(expected)
    assert not any(f"user{i}@example.com" in users for i in SALES_OPS)  # /SalesOps


def test_groups_and_org_units_together_are_a_union(google: Google) -> None:
    users = read_emails(google, groups=[PILOT], org_units=["/Finance"])
    finance = {i for i in range(N_USERS) if unit(i) == "/Finance"}
    assert set(users) == emails(set(range(50)) | set(range(300, 320)) | finance)


def test_domain_instead_of_customer(google: Google) -> None:
    assert set(read_emails(google, domain="example.com")) == EVERYONE_ACTIVE
    assert all(q.get("domain") == "example.com" and "customer" not in q
               for _, q in google.standin.seen)


def test_https_endpoint_with_ca_file(tmp_path: Path) -> None:
    with GoogleStandin(workspace(30), account(), https=True, tls_dir=tmp_path / "tls") as g:
        assert g.tls is not None
        key_file = write_key_file(tmp_path / "key.json", g)
        users = read_emails(Google(g, key_file), ca_file=str(g.tls.ca_file))
        assert set(users) == emails(range(30))
