"""Whole runs with an Entra `app:` source into the Nebuly stand-in: real start dates from
assignments, and people who lose access deactivated on the next run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from standins.entra.data import user_id
from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import config_text, person, roster, write_csv
from tests.conftest_entra import source_yaml
from tests.conftest_entra_app import AGENT, APP_ID, AppTenant, app_tenant, upn

__all__ = ["app_tenant"]  # fixtures used by name

FIRST, SECOND = date(2026, 11, 22), date(2026, 11, 23)


def write_config(tmp_path: Path, nebuly: NebulyStandIn, tenant: AppTenant) -> Path:
    standin = tenant.standin
    secret_file = tmp_path / "entra-secret"
    secret_file.write_text(str(standin.identity.client_secret), encoding="utf-8")
    source = source_yaml(standin, secret_file, "agent", f"""    app: {APP_ID}
    app_roles: []
    end_user: "{{userPrincipalName}}"
    active_from: "{{assignedDateTime}}"
    tags:
      department: "{{department}}"
""")
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(20)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(nebuly.url, csv_path, source=source,
                               policy='  max_deactivations: "50%"'), encoding="utf-8")
    return cfg


def test_assignment_dates_and_lost_access(tmp_path: Path, standin: NebulyStandIn,
                                          app_tenant: AppTenant) -> None:
    config = load_config(write_config(tmp_path, standin, app_tenant))
    report = run_once(config, today=FIRST)
    assert report.exit_code == ExitCode.OK, report
    users = roster(standin)
    assert {u for u in users if u.endswith("@contoso.example")} == {
        upn(i) for i in (0, 1, 2, 3, 4, 7, 8, 9, 15, 16)}
    # Assigned directly on 2025-03-14 (and again, as Admin, later): the earliest date.
    assert users[upn(15)]["active_from"] == "2025-03-14"
    assert users[upn(16)]["active_from"] == "2025-05-05"
    # Access through the group only: Graph has no date, so the insert date.
    assert users[upn(0)]["active_from"] == FIRST.isoformat()
    assert not any(u.get("active_to") for u in users.values())

    app_tenant.unassign(user_id(16))
    app_tenant.leave_group(AGENT, user_id(1))
    report = run_once(config, today=SECOND)
    assert report.exit_code == ExitCode.OK, report
    users = roster(standin)
    assert users[upn(16)]["active_to"] == SECOND.isoformat()
    assert users[upn(1)]["active_to"] == SECOND.isoformat()
    assert {u for u, v in users.items() if v.get("active_to")} == {upn(16), upn(1)}
    assert users[upn(15)]["active_from"] == "2025-03-14"  # unchanged


def test_failed_assignment_read_writes_nothing(tmp_path: Path, standin: NebulyStandIn,
                                               app_tenant: AppTenant) -> None:
    config = load_config(write_config(tmp_path, standin, app_tenant))
    assert run_once(config, today=FIRST).exit_code == ExitCode.OK
    before = standin.users()
    standin.reset_calls()
    app_tenant.unassign(user_id(16))  # a change the failed run must not apply
    app_tenant.standin.drop_page(after=1)  # the assignments read dies
    assert run_once(config, today=SECOND).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before
    app_tenant.standin.throttle(429, retry_after=1, times=20, after=3)  # getByIds throttled
    assert run_once(config, today=SECOND).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before
