"""Whole runs with a Google Workspace source (Google stand-in) into the Nebuly stand-in."""

from __future__ import annotations

from pathlib import Path

from standins.google.data import Group, Workspace, google_id, make_users
from standins.google.server import GoogleStandin
from standins.nebuly.server import NebulyStandIn
from standins.okta.data import Org
from standins.okta.data import make_users as make_okta_users
from standins.okta.server import OktaIdentity, OktaStandin
from syncd.config.model import SyncdConfig
from syncd.run.orchestrator import ExitCode, run_once
from tests import e2e
from tests.conftest import CANARY_OKTA_TOKEN, roster, run_cli
from tests.conftest_google import (
    PILOT,
    Google,
    account,
    emails,
    google,
    google_server,
    write_key_file,
)
from tests.e2e import CSV_IDS, TODAY

__all__ = ["google", "google_server"]  # fixtures used by name

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
    return e2e.write_csv_config(tmp_path, nebuly, google_yaml(standin, key_file, scope), policy)


def test_group_members_and_csv_sync_their_union(tmp_path: Path, standin: NebulyStandIn,
                                                google: Google) -> None:
    _, config = write_config(tmp_path, standin, google.standin, google.key_file,
                             f'groups: ["{PILOT}"]', policy='  max_deactivations: "100%"')
    e2e.synced(config)
    users = roster(standin)
    assert set(users) == CSV_IDS | PILOT_IDS
    # {organizations.0.department} and {orgUnitPath} reach the tags.
    assert users["user7@example.com"]["tags"] == {"department": "Sales", "unit": "/Sales"}
    e2e.assert_next_run_writes_nothing(config, standin)


def test_suspended_person_gets_active_to_on_the_next_run(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    users = make_users(30)
    for user in users:
        user["orgUnitPath"] = "/Engineering"
    with GoogleStandin(Workspace(users), account()) as g:
        key_file = write_key_file(tmp_path / "key.json", g)
        _, config = write_config(tmp_path, standin, g, key_file, 'org_units: ["/Engineering"]',
                                 policy='  max_deactivations: "100%"')
        e2e.synced(config)
        users[4]["suspended"] = True  # an admin suspends user4 in the Admin console
        e2e.synced(config)
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
        key_file = write_key_file(tmp_path / "key.json", g)
        google_source = {
            "name": "google", "type": "google", "credentials_file": str(key_file),
            "subject": "admin@example.com", "api_endpoint": g.url,
            "groups": ["pilot@example.com"], "end_user": "{primaryEmail}",
            "tags": {"department": "{organizations.0.department}"}}
        e2e.synced(e2e.sources_config(standin, google_source, e2e.okta_source(okta)))
        users = roster(standin)
        assert set(users) == {"user0@example.com", "user1@example.com",
                              "user1@acme.example", "user2@acme.example"}
        assert users["user0@example.com"]["tags"] == {"department": "Engineering",
                                                      "role": "Director"}
