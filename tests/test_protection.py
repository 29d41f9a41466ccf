"""People syncd cannot read are people who exist: never inserted, overwritten,
deactivated or deleted on the strength of a bad read (source or Nebuly)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, approve, rollback, run_once
from syncd.run.state import StateDir
from tests.conftest import config_text, person, roster, write_csv

TODAY = date(2026, 11, 22)


def record(end_user: str, **extra: Any) -> dict[str, Any]:
    return {"end_user": end_user, "tags": {"department": "Sales", "region": "FR"},
            "active_from": "2020-01-01", **extra}


def configured(tmp_path: Path, url: str, rows: list[dict[str, str]], *,
               policy: str = "", state: bool = False) -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    text = config_text(url, csv_path, policy=policy)
    cfg.write_text(text + (f"state_dir: {tmp_path / 'state'}\n" if state else ""))
    return cfg


def test_an_unreadable_nebuly_entry_is_neither_overwritten_nor_rolled_back(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    # Nebuly holds person 0 with a start date syncd cannot read and a tag of another tool.
    odd = record("user00000@example.com", active_from="2019/03/04", tags={"cost": "42"})
    standin.seed([odd])
    cfg = configured(tmp_path, standin.url, [person(0), person(1)], state=True)
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    assert roster(standin)["user00000@example.com"] == odd  # untouched
    assert report.summary()["inserted"] == 1  # only person 1
    rollback(load_config(cfg), report.run_id)
    assert roster(standin)["user00000@example.com"] == odd


def test_an_insert_that_meets_a_hidden_user_leaves_him_and_records_nothing(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    # Nebuly's list leaves out a user it holds (a lagging replica, say).
    existing = record("user00000@example.com")
    standin.seed([existing])
    standin.inject(Fault(method="GET", body=msgspec.json.encode({"users": []})))
    cfg = configured(tmp_path, standin.url, [person(0)], state=True)
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.OK
    # Re-read and planned: he already holds what the sources say, so nothing is written
    # (his active_from stays), and no run record exists that a rollback could apply.
    assert roster(standin)["user00000@example.com"] == existing
    assert StateDir(tmp_path / "state").list_runs() == []


def test_a_malformed_csv_row_keeps_that_person(tmp_path: Path,
                                               standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = configured(tmp_path, standin.url, rows)
    run_once(load_config(cfg), today=TODAY)
    lines = (tmp_path / "roster.csv").read_text().splitlines()
    lines[4] = lines[4].replace(",Sales,", ",Sales, EMEA,")  # an unquoted comma
    (tmp_path / "roster.csv").write_text("\n".join(lines) + "\n")
    report = run_once(load_config(cfg), today=TODAY)
    assert report.summary()["skipped_records"] == 1
    assert report.summary()["deactivated"] == 0
    assert not any(u.get("active_to") for u in standin.users())


def test_approve_leaves_alone_people_a_run_would_protect(tmp_path: Path,
                                                         standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = configured(tmp_path, standin.url, rows, state=True)
    run_once(load_config(cfg), today=TODAY)
    configured(tmp_path, standin.url, rows[5:], state=True)
    blocked = run_once(load_config(cfg), today=TODAY)
    assert blocked.pending_plan is not None
    # Person 0 is back but with a broken row: unreadable, so protected, not departed.
    lines = (tmp_path / "roster.csv").read_text().splitlines()
    lines.append("user00000@example.com,Sales, EMEA,FR,Analyst")
    (tmp_path / "roster.csv").write_text("\n".join(lines) + "\n")
    outcome = approve(load_config(cfg), blocked.pending_plan, dry_run=True)
    skipped = dict(outcome.skipped)
    assert "no longer due" in skipped["user00000@example.com"]
    assert len(outcome.plan.deactivations) == 4


def test_a_run_that_fails_while_writing_does_not_advance_the_grace_period(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    policy = "  grace_runs: 2"
    cfg = configured(tmp_path, standin.url, rows, policy=policy, state=True)
    run_once(load_config(cfg), today=TODAY)
    configured(tmp_path, standin.url, [*rows[1:], person(99)], policy=policy, state=True)
    standin.inject(Fault(method="PUT", status=503, times=-1))
    failed = run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)
    assert failed.exit_code == ExitCode.NEBULY_FAILED
    assert StateDir(tmp_path / "state").load_missing() == {}


def test_state_dir_failure_after_writing_is_reported_not_a_crash(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = configured(tmp_path, standin.url, [person(0)], state=True)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "runs").write_text("not a directory")
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.CONFIG_ERROR and report.status == "state_write_failed"
    assert "state_dir" in (report.error or "")
    assert "user00000@example.com" in roster(standin)  # the write itself went through
