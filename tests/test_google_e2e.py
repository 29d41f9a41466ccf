"""Whole runs with a Google Workspace source (Google stand-in) into the Nebuly stand-in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from standins.google.data import Group, Workspace, google_id, make_users
from standins.google.server import GoogleStandin
from standins.nebuly.server import NebulyStandIn
from standins.okta.data import Org
from standins.okta.data import make_users as make_okta_users
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
from tests.conftest_google import (
    PILOT,
    Google,
    account,
    emails,
    google,
    google_server,
    write_key_file,
)

__all__ = ["google", "google_server"]  # fixtures used by name

TODAY = date(2026, 11, 22)
CSV_IDS = {f"user{i:05d}@example.com" for i in range(20)}
PILOT_IDS = emails(set(range(50)) | set(range(300, 320)))


def google_yaml(standin: GoogleStandin, key_file: Path, scope: str) -> str:
    return f"""
  - name: google
    type: google
    credentials_file: {key_file}
    subject: admin@example.com
    api_endpoint: {standin.url}
    {scope}
    max_retry_wait: 3s
    end_user: "{{primaryEmail}}"
    tags:
      department: "{{organizations.0.department}}"
      unit: "{{orgUnitPath}}"
"""


def write_config(tmp_path: Path, nebuly: NebulyStandIn, standin: GoogleStandin, key_file: Path,
                 scope: str, policy: str = "") -> tuple[Path, SyncdConfig]:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(20)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(nebuly.url, csv_path, policy=policy,
                               source=google_yaml(standin, key_file, scope)), encoding="utf-8")
    return cfg, load_config(cfg)


def test_group_members_and_csv_sync_their_union(tmp_path: Path, standin: NebulyStandIn,
                                                google: Google) -> None:
    _, config = write_config(tmp_path, standin, google.standin, google.key_file,
                             f'groups: ["{PILOT}"]', policy='  max_deactivations: "100%"')
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    users = roster(standin)
    assert set(users) == CSV_IDS | PILOT_IDS
    # {organizations.0.department} and {orgUnitPath} reach the tags.
    assert users["user7@example.com"]["tags"] == {"department": "Sales", "unit": "/Sales"}
    standin.reset_calls()
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK and standin.write_calls() == 0


def test_suspended_person_gets_active_to_on_the_next_run(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    users = make_users(30)
    for user in users:
        user["orgUnitPath"] = "/Engineering"
    with GoogleStandin(Workspace(users), account()) as g:
        key_file = write_key_file(tmp_path / "key.json", g)
        _, config = write_config(tmp_path, standin, g, key_file, 'org_units: ["/Engineering"]',
                                 policy='  max_deactivations: "100%"')
        assert run_once(config, today=TODAY).exit_code == ExitCode.OK
        users[4]["suspended"] = True  # an admin suspends user4 in the Admin console
        report = run_once(config, today=TODAY)
        assert report.exit_code == ExitCode.OK, report.summary()
        after = roster(standin)
        assert [u for u, v in after.items() if v.get("active_to")] == ["user4@example.com"]
        assert after["user4@example.com"]["active_to"] == TODAY.isoformat()


def test_failed_google_read_writes_nothing(tmp_path: Path, standin: NebulyStandIn,
                                           google: Google) -> None:
    cfg, config = write_config(tmp_path, standin, google.standin, google.key_file,
                               f'groups: ["{PILOT}"]')
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    before = standin.users()
    standin.reset_calls()
    google.standin.drop_page(after=2, times=2)  # the users listing dies on its second page
    assert run_once(config, today=TODAY).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before
    google.standin.fail_tokens(times=1)  # then the token endpoint refuses, through the CLI
    done = run_cli("once", "--config", str(cfg))
    assert done.returncode == ExitCode.SOURCE_FAILED, done.stderr
    assert "cannot get an access token" in done.stderr
    assert standin.write_calls() == 0 and standin.users() == before


def test_person_in_okta_and_google_is_one_user(tmp_path: Path, standin: NebulyStandIn) -> None:
    google_users = make_users(3)
    okta_users = make_okta_users(3)
    # Okta's user0 is Google's user0 (another case); each has a tag the other lacks.
    okta_users[0]["profile"] |= {"email": "USER0@example.com", "title": "Director"}
    workspace = Workspace(google_users, {"pilot@example.com": Group(
        "pilot@example.com", [google_id(0), google_id(1)])})
    with GoogleStandin(workspace, account()) as g, \
            OktaStandin(Org(okta_users), OktaIdentity(api_token=CANARY_OKTA_TOKEN),
                        tls_dir=tmp_path / "tls") as okta:
        assert okta.tls is not None
        key_file = write_key_file(tmp_path / "key.json", g)
        config = SyncdConfig.model_validate({
            "nebuly": {"base_url": standin.url, "api_key": CANARY_API_KEY},
            "policy": {"max_deactivations": "100%"},
            "sources": [
                {"name": "google", "type": "google", "credentials_file": str(key_file),
                 "subject": "admin@example.com", "api_endpoint": g.url,
                 "groups": ["pilot@example.com"], "end_user": "{primaryEmail}",
                 "tags": {"department": "{organizations.0.department}"}},
                {"name": "okta", "type": "okta", "org_url": okta.org_url,
                 "api_token": CANARY_OKTA_TOKEN, "ca_file": str(okta.tls.ca_file),
                 "end_user": "{profile.email}",
                 "tags": {"department": "{profile.department}", "role": "{profile.title}"}},
            ]})
        report = run_once(config, today=TODAY)
        assert report.exit_code == ExitCode.OK, report.summary()
        users = roster(standin)
        assert set(users) == {"user0@example.com", "user1@example.com",
                              "user1@acme.example", "user2@acme.example"}
        assert users["user0@example.com"]["tags"] == {"department": "Engineering",
                                                      "role": "Director"}
