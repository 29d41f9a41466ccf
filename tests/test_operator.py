"""Operator controls: staged approval, rollback, grace period, source dates, preview, tags."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.core.dates import parse_date
from syncd.run.orchestrator import ExitCode, approve, rollback, run_once
from syncd.run.state import StateDir
from tests.conftest import config_text, person, roster, run_cli, write_csv

TODAY = date(2026, 11, 22)




def test_blocked_run_leaves_a_plan_that_approve_applies(stateful: Any,
                                                        standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows)
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    stateful(rows[5:])  # five leave: over 10% of 20
    blocked = run_cli("once", "--config", str(cfg))
    assert blocked.returncode == ExitCode.GUARD_TRIPPED
    assert not any(u.get("active_to") for u in standin.users())
    listed = json.loads(run_cli("plans", "--config", str(cfg), "--json").stdout)
    assert len(listed) == 1 and listed[0]["deactivate"] == 5
    plan_id = listed[0]["plan_id"]
    assert f"syncd approve {plan_id}" in blocked.stderr

    stateful([rows[0], *rows[5:]])  # person 0 came back before the admin approved
    dry = run_cli("approve", plan_id, "--config", str(cfg), "--dry-run")
    assert dry.returncode == 0 and "would change 4 users" in dry.stdout
    assert "user00000@example.com: back in the sources" in dry.stdout
    assert not any(u.get("active_to") for u in standin.users())

    done = run_cli("approve", plan_id, "--config", str(cfg))
    assert done.returncode == 0, done.stdout + done.stderr
    ended = sorted(u for u, v in roster(standin).items() if v.get("active_to"))
    assert ended == [f"user0000{i}@example.com" for i in range(1, 5)]
    assert run_cli("plans", "--config", str(cfg)).stdout.strip() == "no pending plans"
    again = run_cli("approve", plan_id, "--config", str(cfg))
    assert again.returncode == 2 and f"no plan {plan_id}" in again.stderr


def test_an_approve_says_the_same_counts_in_its_message_summary_and_event(
        stateful: Any, standin: NebulyStandIn,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    rows = [person(i) for i in range(20)]
    run_once(load_config(stateful(rows)))
    cfg = stateful(rows[5:])  # five leave: over 10% of 20, held in a plan
    plan_id = run_once(load_config(cfg)).pending_plan
    assert plan_id is not None
    dry = approve(load_config(cfg), plan_id, dry_run=True)
    done = approve(load_config(cfg), plan_id)
    counts = {"insert": 0, "update": 0, "deactivate": 5, "reactivate": 0, "delete": 0}
    assert dry.summary is not None and done.summary is not None
    assert dry.summary.fields() == {"of": plan_id, "dry_run": True, "exit_code": 0,
                                    "skipped": 0, "failed": 0, "write_calls": 0, **counts}
    assert done.summary.fields() == {**dry.summary.fields(), "dry_run": False,
                                     "write_calls": done.summary.write_calls}
    assert done.summary.write_calls > 0
    assert "would change 5 users, skipped 0, failed 0" in dry.message
    assert "changed 5 users, skipped 0, failed 0" in done.message
    events = [e for e in _logs_without_secrets if e["event"] == "approve.finished"]
    assert [{k: e[k] for k in outcome.summary.fields()} for e, outcome
            in zip(events, (dry, done), strict=True) if outcome.summary] == [
        dry.summary.fields(), done.summary.fields()]


def test_expired_plan_is_refused(stateful: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows, policy="  plan_expiry: 1ms")
    run_once(load_config(cfg), today=TODAY)
    stateful(rows[5:], policy="  plan_expiry: 1ms")
    report = run_once(load_config(cfg), today=TODAY)
    assert report.pending_plan is not None
    outcome = approve(load_config(cfg), report.pending_plan)
    assert outcome.exit_code == ExitCode.CONFIG_ERROR and "expired" in outcome.message
    assert not any(u.get("active_to") for u in standin.users())


def test_rollback_restores_a_run_exactly(stateful: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(30)]
    cfg = stateful(rows)
    run_once(load_config(cfg), today=TODAY - timedelta(days=1))
    before = roster(standin)
    changed = [*rows[2:], person(100)]
    changed[0] = person(2, department="Ops")
    stateful(changed)
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.OK
    assert report.summary()["deactivated"] == 2 and report.summary()["inserted"] == 1
    assert roster(standin) != before

    preview = run_cli("rollback", report.run_id, "--config", str(cfg), "--dry-run")
    assert preview.returncode == 0 and "would change 4 users" in preview.stdout
    assert "~ update      user00002@example.com  department: Ops -> Sales" in preview.stdout
    outcome = rollback(load_config(cfg), report.run_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert roster(standin) == before
    # The rollback is a run of its own, so it can be undone too.
    assert outcome.run_id in StateDir(cfg.parent / "state").list_runs()


def test_rollback_skips_users_changed_since_unless_forced(stateful: Any,
                                                          standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(10)]
    cfg = stateful(rows)
    run_once(load_config(cfg), today=TODAY)
    rows[0] = person(0, department="Ops")
    stateful(rows)
    first = run_once(load_config(cfg), today=TODAY)
    rows[0] = person(0, department="Legal")
    stateful(rows)
    run_once(load_config(cfg), today=TODAY)
    outcome = rollback(load_config(cfg), first.run_id)
    assert outcome.skipped == (("user00000@example.com", "changed since that run (use --force)"),)
    assert roster(standin)["user00000@example.com"]["tags"]["department"] == "Legal"
    forced = rollback(load_config(cfg), first.run_id, force=True)
    assert forced.exit_code == ExitCode.OK
    assert roster(standin)["user00000@example.com"]["tags"]["department"] == "Sales"


def test_grace_runs(stateful: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows, policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 1))
    stateful(rows[1:], policy="  grace_runs: 2")
    first = run_once(load_config(cfg), today=date(2026, 11, 2))
    assert first.summary()["deactivated"] == 0 and first.summary()["in_grace"] == 1
    assert roster(standin)["user00000@example.com"].get("active_to") is None
    second = run_once(load_config(cfg), today=date(2026, 11, 3))
    assert second.summary()["deactivated"] == 1
    # active_to is the date they were first missed, not the date of the run.
    assert roster(standin)["user00000@example.com"]["active_to"] == "2026-11-02"


def test_grace_memory_clears_when_a_person_returns(stateful: Any,
                                                   standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows, policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 1))
    stateful(rows[1:], policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 2))          # missed once
    stateful(rows, policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 3))          # back: memory cleared
    stateful(rows[1:], policy="  grace_runs: 2")
    report = run_once(load_config(cfg), today=date(2026, 11, 4))  # missed once again
    assert report.summary()["deactivated"] == 0
    assert roster(standin)["user00000@example.com"].get("active_to") is None


def test_failed_read_does_not_count_towards_grace(stateful: Any, standin: NebulyStandIn,
                                                  tmp_path: Path) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows, policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 1))
    stateful(rows[1:], policy="  grace_runs: 2")
    run_once(load_config(cfg), today=date(2026, 11, 2))
    (tmp_path / "roster.csv").unlink()
    assert run_once(load_config(cfg), today=date(2026, 11, 3)).exit_code == 3
    missing = StateDir(tmp_path / "state").load_missing()
    assert missing["user00000@example.com"].runs == 1


def test_grace_period_in_days(stateful: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows, policy="  grace_period: 2d")
    run_once(load_config(cfg), today=date(2026, 11, 1))
    stateful(rows[1:], policy="  grace_period: 2d")
    for day in (2, 3):
        report = run_once(load_config(cfg), today=date(2026, 11, day))
        assert report.summary()["deactivated"] == 0
    assert run_once(load_config(cfg), today=date(2026, 11, 4)).summary()["deactivated"] == 1
    assert roster(standin)["user00000@example.com"]["active_to"] == "2026-11-02"


def test_grace_needs_a_state_dir(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text("http://127.0.0.1:9", tmp_path / "r.csv",
                               policy="  grace_runs: 2"))
    done = run_cli("validate", "--config", str(cfg))
    assert done.returncode == 2 and "grace_runs / grace_period need state_dir" in done.stderr


@pytest.mark.parametrize(("raw", "fmt", "expected"), [
    ("2026-01-31", None, date(2026, 1, 31)),
    ("2026-01-31T23:30:00Z", None, date(2026, 1, 31)),
    ("2026-01-31T09:00:00+02:00", None, date(2026, 1, 31)),
    ("20260131093000Z", None, date(2026, 1, 31)),           # AD whenCreated
    ("20260131093000.0Z", None, date(2026, 1, 31)),
    ("134143668000000000", None, date(2026, 1, 31)),        # AD accountExpires (FILETIME)
    ("0", None, None), ("9223372036854775807", None, None),  # AD "never"
    ("31/01/2026", "%d/%m/%Y", date(2026, 1, 31)),
])
def test_source_date_formats(raw: str, fmt: str | None, expected: date | None) -> None:
    assert parse_date(raw, fmt) == expected


def test_bad_date_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an ISO date such as 2026-01-31"):
        parse_date("next tuesday")


def test_dates_mapped_from_a_csv_column(tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) | {"hired": "20250301080000Z", "leaves": ""} for i in range(3)]
    rows[1]["leaves"] = "2027-06-30"
    fields = ("email", "department", "country", "title", "hired", "leaves")
    csv_path = write_csv(tmp_path / "roster.csv", rows, fields)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text(standin.url, csv_path,
                               source='    active_from: "{hired}"\n    active_to: "{leaves}"'))
    assert run_once(load_config(cfg), today=TODAY).exit_code == ExitCode.OK
    users = roster(standin)
    assert users["user00000@example.com"]["active_from"] == "2025-03-01"
    assert users["user00000@example.com"].get("active_to") is None
    assert users["user00001@example.com"]["active_to"] == "2027-06-30"
    assert run_once(load_config(cfg), today=TODAY).summary()["write_calls"] == 0


def test_preview_shows_mapped_records_without_nebuly(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "roster.csv",
                         [person(i, department=d) for i, d in enumerate(["Ops", "Sales"])])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text("http://127.0.0.1:9", csv_path))  # nothing listens there
    table = run_cli("preview", "--config", str(cfg))
    assert table.returncode == 0, table.stderr
    assert "user00000@example.com" in table.stdout and "department=Ops region=FR" in table.stdout
    assert "(2 of 2 users)" in table.stdout
    one = json.loads(run_cli("preview", "--config", str(cfg), "--format", "json",
                         "--id", "USER00001@example.com").stdout)
    assert one == [{"end_user": "user00001@example.com",
                    "tags": {"department": "Sales", "region": "FR"},
                    "active_from": None, "active_to": None, "sources": ["hr"]}]


def test_tag_hygiene_allow_list_and_distinct_value_cap(tmp_path: Path,
                                                       standin: NebulyStandIn) -> None:
    departments = ["Sales"] * 5 + ["Ops"] * 3 + ["Legal"] * 2 + ["Chess club", "Band"]
    rows = [person(i, department=d, country=c) for i, (d, c) in
            enumerate(zip(departments, ["FR", "DE", "XX"] * 4, strict=True))]
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text(standin.url, csv_path).replace(
        '      department: "{department}"\n      region: "{country}"',
        '      department: {template: "{department}", max_values: 3}\n'
        '      region: {template: "{country}", allow: [FR, DE], other: elsewhere}'))
    assert run_once(load_config(cfg), today=TODAY).exit_code == ExitCode.OK
    users = list(roster(standin).values())
    assert {u["tags"]["department"] for u in users} == {"Sales", "Ops", "other"}
    assert sum(u["tags"]["department"] == "other" for u in users) == 4
    assert {u["tags"]["region"] for u in users} == {"FR", "DE", "elsewhere"}


def test_a_new_blocked_plan_supersedes_the_older_ones(stateful: Any,
                                                      standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows)
    run_once(load_config(cfg), today=TODAY)
    stateful(rows[5:])
    first = run_once(load_config(cfg), today=TODAY)
    stateful(rows[6:])  # one more leaves: different blocked changes, a new plan
    second = run_once(load_config(cfg), today=TODAY)
    pending = [p.plan_id for p in StateDir(cfg.parent / "state").list_plans()]
    assert pending == [second.pending_plan] and first.pending_plan != second.pending_plan
    # The older id still names what it held (tests/test_admin_approve.py applies it).
    dry = run_cli("approve", str(first.pending_plan), "--config", str(cfg), "--dry-run")
    assert dry.returncode == 0 and f"superseded by {second.pending_plan}" in dry.stdout
