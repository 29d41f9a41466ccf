"""Whole runs with an Okta source (Okta stand-in) into the Nebuly stand-in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from standins.okta.data import Org, make_users, user_id
from standins.okta.server import OktaIdentity, OktaStandin
from syncd.config.model import SyncdConfig, load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import (
    CANARY_API_KEY,
    CANARY_OKTA_TOKEN,
    config_text,
    person,
    roster,
    run_cli,
    write_csv,
)
from tests.conftest_ldap import PILOT_NESTED, corp_fixture, group_dn, source_config
from tests.conftest_okta import APP, APP_DIRECT, Okta, logins, okta, okta_server
from tests.slapd import Slapd

__all__ = ["corp_fixture", "okta", "okta_server"]  # fixtures used by name

TODAY = date(2026, 11, 22)
CSV_IDS = {f"user{i:05d}@example.com" for i in range(20)}


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
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(20)])
    token_file = tmp_path / "okta-token"
    token_file.write_text(token, encoding="utf-8")
    assert okta.tls is not None
    source = okta_yaml(okta.org_url, okta.tls.ca_file, token_file, scope)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(nebuly.url, csv_path, source=source, policy=policy),
                   encoding="utf-8")
    return cfg, load_config(cfg)


def test_app_assigned_people_and_csv_sync_their_union(
        tmp_path: Path, standin: NebulyStandIn, okta: Okta) -> None:
    _, config = write_config(tmp_path, standin, okta.standin, f"app: {APP}",
                             policy='  max_deactivations: "100%"')
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    users = roster(standin)
    assert set(users) == CSV_IDS | logins(set(range(100)) | set(APP_DIRECT))
    # active_from is when the person was assigned to the app ({assignedDateTime}).
    assert users["user6@acme.example"]["active_from"] == "2025-03-01"
    assert users["user6@acme.example"]["tags"] == {"department": "Engineering"}
    standin.reset_calls()
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK and standin.write_calls() == 0


def test_suspended_person_gets_active_to_on_the_next_run(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    users = make_users(30)
    org = Org(users, {"00gteam": [user_id(i) for i in range(30)]})
    with OktaStandin(org, OktaIdentity(api_token=CANARY_OKTA_TOKEN),
                     tls_dir=tmp_path / "tls") as okta:
        _, config = write_config(tmp_path, standin, okta, 'groups: ["00gteam"]',
                                 policy='  max_deactivations: "100%"')
        assert run_once(config, today=TODAY).exit_code == ExitCode.OK
        assert not any(u.get("active_to") for u in standin.users())
        users[3]["status"] = "SUSPENDED"  # an admin suspends user3 in Okta
        report = run_once(config, today=TODAY)
        assert report.exit_code == ExitCode.OK, report.summary()
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
        assert okta.tls is not None
        okta_source = {
            "name": "okta", "type": "okta", "org_url": okta.org_url,
            "api_token": CANARY_OKTA_TOKEN, "ca_file": str(okta.tls.ca_file),
            "end_user": "{profile.email}",
            "tags": {"department": "{profile.department}", "role": "{profile.title}"},
        }
        ldap = source_config(corp, "ldap3", groups=[group_dn("ai-pilot")], end_user="{mail}",
                             tags={"department": "{departmentNumber}"})
        config = SyncdConfig.model_validate({
            "nebuly": {"base_url": standin.url, "api_key": CANARY_API_KEY},
            "sources": [ldap, okta_source], "policy": {"max_deactivations": "100%"}})

        report = run_once(config, today=TODAY)
        assert report.exit_code == ExitCode.OK, report.summary()
        users_now = roster(standin)
        expected = {f"{u}@corp.example" for u in PILOT_NESTED} | {"user1@acme.example"}
        assert set(users_now) == expected  # the suspended Okta user is left out
        # One user for the person in both; LDAP (first) wins the department, Okta
        # alone has a role; the disagreement is counted.
        assert users_now["u0100@corp.example"]["tags"] == {"department": "D0",
                                                           "role": "Engineer"}
        assert report.summary()["conflicts"] == 1


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
