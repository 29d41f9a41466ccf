"""Whole runs: sources -> plan -> guards -> apply against the real stand-in, and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import config_text, person, roster, run_cli, write_csv

TODAY = date(2026, 11, 22)




def test_acceptance_scenario_through_the_cli(tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(50)]
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path))

    first = run_cli("once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    assert len(standin.users()) == 50 and standin.write_calls() == 1

    rows[7]["department"] = "Legal"
    write_csv(csv_path, [r for i, r in enumerate(rows) if i not in (3, 4)])
    standin.reset_calls()
    second = run_cli("once", "--config", str(cfg))
    assert second.returncode == 0, second.stderr
    assert standin.write_calls() <= 2
    summary = json.loads(second.stderr.strip().splitlines()[-1])
    assert summary["event"] == "sync.finished"
    assert (summary["updated"], summary["deactivated"], summary["inserted"]) == (1, 2, 0)
    users = roster(standin)
    today = date.today().isoformat()
    assert [u for u, v in users.items() if v.get("active_to")] == [
        "user00003@example.com", "user00004@example.com"]
    assert users["user00003@example.com"]["active_to"] == today
    assert users["user00007@example.com"]["tags"]["department"] == "Legal"

    standin.reset_calls()
    third = run_cli("once", "--config", str(cfg))
    assert third.returncode == 0 and standin.write_calls() == 0
    assert json.loads(third.stderr.strip().splitlines()[-1])["unchanged"] == 50


def test_dry_run_writes_nothing_and_shows_the_plan(tmp_path: Path,
                                                   standin: NebulyStandIn) -> None:
    standin.seed([{"end_user": "gone@example.com", "tags": {}, "active_from": "2026-01-01"}])
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(12)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path))
    plan_file = tmp_path / "plan.json"
    done = run_cli("plan", "--config", str(cfg), "--plan-out", str(plan_file))
    # A dry run exits as the real run would: 5 says a guard would block part of it.
    assert done.returncode == 5, done.stderr
    assert standin.write_calls() == 0 and len(standin.users()) == 1
    assert "Would apply: 12 insert, 0 update, 0 deactivate" in done.stdout
    assert "+ insert      user00000@example.com  department=Sales region=FR" in done.stdout
    doc = json.loads(plan_file.read_text())
    assert doc["plan"]["counts"]["insert"] == 12 and doc["dry_run"] is True
    # 1 departure of 1 managed user is over 10%: blocked, and shown as blocked.
    assert doc["blocked"]["deactivate"][0]["end_user"] == "gone@example.com"
    assert "x deactivate  gone@example.com" in done.stdout
    assert run_cli("once", "--dry-run", "--config", str(cfg)).returncode == 5
    assert standin.write_calls() == 0


def test_guard_blocks_deactivations_but_inserts_and_updates_go(
        make_config: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(30)]
    config, csv_path = make_config(rows)
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    kept = [*rows[:25], person(100)]
    kept[0] = person(0, department="Ops")
    write_csv(csv_path, kept)
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.GUARD_TRIPPED and report.status == "guard_tripped"
    users = roster(standin)
    assert "user00100@example.com" in users
    assert users["user00000@example.com"]["tags"]["department"] == "Ops"
    assert not any(u.get("active_to") for u in users.values())
    forced = run_once(config, today=TODAY, force=True)
    assert forced.exit_code == ExitCode.OK and forced.summary()["deactivated"] == 5
    assert sum(1 for u in roster(standin).values() if u.get("active_to")) == 5


def test_unreadable_source_writes_nothing(make_config: Any, standin: NebulyStandIn) -> None:
    config, csv_path = make_config([person(i) for i in range(20)])
    run_once(config, today=TODAY)
    standin.reset_calls()
    csv_path.unlink()
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.SOURCE_FAILED and "file not found" in (report.error or "")
    assert standin.write_calls() == 0
    assert not any(u.get("active_to") for u in standin.users())


def test_empty_source_aborts_unless_allowed(make_config: Any, standin: NebulyStandIn) -> None:
    config, csv_path = make_config([person(i) for i in range(20)])
    run_once(config, today=TODAY)
    standin.reset_calls()
    write_csv(csv_path, [])
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.SOURCE_FAILED and "allow_empty" in (report.error or "")
    assert standin.write_calls() == 0
    allowed, _ = make_config([], source="    allow_empty: true")
    report = run_once(allowed, today=TODAY, force=True)
    assert report.exit_code == ExitCode.OK and report.summary()["deactivated"] == 20


def test_nebuly_read_failure_writes_nothing(make_config: Any, standin: NebulyStandIn) -> None:
    config, _ = make_config([person(i) for i in range(5)])
    standin.inject(Fault(method="GET", status=503, retry_after="1", times=-1))
    report = run_once(config, today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.NEBULY_FAILED and standin.write_calls() == 0


def test_bad_records_are_reported_and_the_rest_synced(
        tmp_path: Path, make_config: Any, standin: NebulyStandIn,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    config, csv_path = make_config([person(i) for i in range(3)])
    with csv_path.open("a", encoding="utf-8") as handle:
        handle.write(",Sales,FR,Analyst\n")                    # no id
        handle.write("short@example.com,Sales\n")              # too few fields
        handle.write("USER00001@EXAMPLE.COM,Ops,DE,Analyst\n")  # duplicate in another case
        handle.write("zoë@exämple.com,Ventes,FR,Analyste\n")     # non-ASCII is fine
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.OK
    assert set(roster(standin)) == {"user00000@example.com", "user00001@example.com",
                                    "user00002@example.com", "zoë@exämple.com"}
    skipped = [e for e in _logs_without_secrets if e["event"] == "record.skipped"]
    reasons = {e["record"]: e["reason"] for e in skipped}
    assert "attribute(s) email missing" in reasons["roster.csv line 5"]
    assert "has 2 fields, the header has 4" in reasons["roster.csv line 6"]
    assert "duplicate id 'user00001@example.com'" in reasons["roster.csv line 7"]
    assert report.summary()["skipped_records"] == 3


def test_partial_failure_is_isolated_and_the_next_run_converges(
        make_config: Any, standin: NebulyStandIn) -> None:
    config, _ = make_config([person(i) for i in range(10)])
    standin.inject(Fault(method="PUT", partial=7), Fault(method="POST", partial=0))
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.PARTIAL_FAILURE
    assert report.summary()["inserted"] == 7 and report.summary()["failed"] == 3
    assert len(standin.users()) == 7
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK and len(standin.users()) == 10


def test_nebuly_outage_mid_apply_fails_cleanly_then_converges(
        make_config: Any, standin: NebulyStandIn) -> None:
    config, _ = make_config([person(i) for i in range(10)],
                            nebuly="  batch_size: 4\n  max_retries: 1")
    standin.inject(Fault(method="PUT", times=1), Fault(method="PUT", status=503, times=-1))
    report = run_once(config, today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.NEBULY_FAILED
    assert report.summary()["failed"] == 6 and len(standin.users()) == 4
    standin.clear_faults()
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    assert len(standin.users()) == 10


def test_returning_person_is_reactivated(make_config: Any, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    config, csv_path = make_config(rows)
    run_once(config, today=date(2026, 1, 1))
    write_csv(csv_path, rows[1:])
    run_once(config, today=date(2026, 2, 1))
    assert roster(standin)["user00000@example.com"]["active_to"] == "2026-02-01"
    write_csv(csv_path, rows)
    report = run_once(config, today=date(2026, 3, 1))
    assert report.summary()["reactivated"] == 1
    back = roster(standin)["user00000@example.com"]
    assert back["active_to"] is None and back["active_from"] == "2026-01-01"


def test_eligible_users_flavour_end_to_end(make_config: Any, standin: NebulyStandIn) -> None:
    config, _ = make_config([person(i) for i in range(3)], nebuly="  api: eligible-users")
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    assert {c.method for c in standin.calls if c.method != "GET"} == {"POST"}
    assert all("eligible-users" in c.path for c in standin.calls)


def test_owner_tag_and_foreign_users(make_config: Any, standin: NebulyStandIn) -> None:
    standin.seed([{"end_user": "manual@example.com", "tags": {}, "active_from": "2026-01-01"}])
    config, _ = make_config([person(i) for i in range(3)],
                            policy="  owner_tag: {key: managed_by, value: syncd}")
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    users = roster(standin)
    assert users["user00000@example.com"]["tags"]["managed_by"] == "syncd"
    assert users["manual@example.com"].get("active_to") is None
