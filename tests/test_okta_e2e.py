"""Whole runs with an Okta source (Okta stand-in) into the Nebuly stand-in."""

from __future__ import annotations

from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from standins.okta.data import Org, make_users, user_id
from standins.okta.server import OktaIdentity, OktaStandin
from syncd.config.model import SyncdConfig
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import CANARY_OKTA_TOKEN, roster, run_cli
from tests.conftest_ldap import corp_fixture
from tests.conftest_okta import APP, APP_DIRECT, Okta, logins, okta, okta_server
from tests.e2e import (
    CSV_IDS,
    TODAY,
    assert_next_run_writes_nothing,
    assert_union_with_ldap_pilot,
    ldap_pilot_source,
    okta_source,
    sources_config,
    synced,
    write_csv_config,
)
from tests.slapd import Slapd

__all__ = ["corp_fixture", "okta", "okta_server"]  # fixtures used by name


def okta_yaml(org_url: str, ca_file: Path, token_file: Path, scope: str) -> str:
    return f"""
  - name: okta
    type: okta
    org_url: {org_url}
    api_token_file: {token_file}
    ca_file: {ca_file}
    {scope}
    max_retry_wait: 3s
    end_user: "{{profile.email}}"
    active_from: "{{assignedDateTime}}"
    tags:
      department: "{{profile.department}}"
"""


def write_config(tmp_path: Path, nebuly: NebulyStandIn, okta: OktaStandin, scope: str,
                 token: str = CANARY_OKTA_TOKEN, policy: str = "") -> tuple[Path, SyncdConfig]:
    token_file = tmp_path / "okta-token"
    token_file.write_text(token, encoding="utf-8")
    assert okta.tls is not None
    source = okta_yaml(okta.org_url, okta.tls.ca_file, token_file, scope)
    return write_csv_config(tmp_path, nebuly, source, policy)


def test_app_assigned_people_and_csv_sync_their_union(
        tmp_path: Path, standin: NebulyStandIn, okta: Okta) -> None:
    _, config = write_config(tmp_path, standin, okta.standin, f"app: {APP}",
                             policy='  max_deactivations: "100%"')
    synced(config)
    users = roster(standin)
    assert set(users) == CSV_IDS | logins(set(range(100)) | set(APP_DIRECT))
    # active_from is when the person was assigned to the app ({assignedDateTime}).
    assert users["user6@acme.example"]["active_from"] == "2025-03-01"
    assert users["user6@acme.example"]["tags"] == {"department": "Engineering"}
    assert_next_run_writes_nothing(config, standin)


def test_suspended_person_gets_active_to_on_the_next_run(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    users = make_users(30)
    org = Org(users, {"00gteam": [user_id(i) for i in range(30)]})
    with OktaStandin(org, OktaIdentity(api_token=CANARY_OKTA_TOKEN),
                     tls_dir=tmp_path / "tls") as okta:
        _, config = write_config(tmp_path, standin, okta, 'groups: ["00gteam"]',
                                 policy='  max_deactivations: "100%"')
        synced(config)
        assert not any(u.get("active_to") for u in standin.users())
        users[3]["status"] = "SUSPENDED"  # an admin suspends user3 in Okta
        report = synced(config)
        after = roster(standin)
        assert after["user3@acme.example"]["active_to"] == TODAY.isoformat()
        assert [u for u, v in after.items() if v.get("active_to")] == ["user3@acme.example"]
        assert report.summary()["deactivated"] == 1


def test_failed_okta_read_writes_nothing(tmp_path: Path, standin: NebulyStandIn,
                                         okta: Okta) -> None:
    _, config = write_config(tmp_path, standin, okta.standin, f"app: {APP}")
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    before = standin.users()
    standin.reset_calls()
    okta.standin.drop_page(after=0, times=2)  # the read dies on its first page
    assert run_once(config, today=TODAY).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before
    okta.standin.throttle(429, reset_in=60, times=1)  # a reset past max_retry_wait (3s)
    assert run_once(config, today=TODAY).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before


def test_revoked_token_through_the_cli_writes_nothing_and_shows_no_secret(
        tmp_path: Path, standin: NebulyStandIn, okta: Okta) -> None:
    okta.standin.revoke_api_token()
    cfg, _ = write_config(tmp_path, standin, okta.standin, f"app: {APP}")
    done = run_cli("once", "--config", str(cfg))  # checks: no canary, no traceback
    assert done.returncode == ExitCode.SOURCE_FAILED, done.stderr
    assert "the API token was refused" in done.stderr
    assert standin.write_calls() == 0 and standin.users() == []


def test_ldap_and_okta_sync_their_union(tmp_path: Path, standin: NebulyStandIn,
                                        corp: Slapd) -> None:
    users = make_users(3)
    # The same person as LDAP's u0100 (the id differs only in case), with other values.
    users[0]["profile"] |= {"email": "U0100@corp.example", "department": "Okta-dept",
                            "title": "Engineer"}
    users[2]["status"] = "SUSPENDED"
    with OktaStandin(Org(users), OktaIdentity(api_token=CANARY_OKTA_TOKEN),
                     tls_dir=tmp_path / "tls") as okta:
        report = synced(sources_config(standin, ldap_pilot_source(corp), okta_source(okta)))
        # user0 is LDAP's u0100; the suspended Okta user (user2) is left out.
        assert_union_with_ldap_pilot(standin, report, {"user1@acme.example"})


def test_validate_connect_reads_okta_and_names_a_refused_token(
        tmp_path: Path, standin: NebulyStandIn, okta: Okta) -> None:
    cfg, _ = write_config(tmp_path, standin, okta.standin, f"app: {APP}")
    done = run_cli("validate", "--connect", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert f"would read {len(logins(set(range(100)) | set(APP_DIRECT)))} people" in done.stdout
    okta.standin.revoke_api_token()
    refused = run_cli("validate", "--connect", "--config", str(cfg))
    assert refused.returncode == ExitCode.SOURCE_FAILED
    assert "sources[1]: Okta answered 401" in refused.stderr
    assert standin.write_calls() == 0
