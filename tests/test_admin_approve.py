"""The approve path (issue 18, finding 5): the hint in the log is a command that works
as pasted, and a plan id from an alert stays usable while the daemon keeps running."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, approve, run_once
from syncd.run.state import StateDir
from tests.conftest import config_text, person, roster, write_csv

TODAY = date(2026, 11, 22)


def _config(tmp_path: Path, url: str, rows: list[dict[str, str]]) -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path) + f"state_dir: {tmp_path / 'state'}\n")
    return cfg


def _pending(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "plan.pending"]


def test_the_logged_approve_hint_names_the_config(
        tmp_path: Path, standin: NebulyStandIn,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows)
    run_once(load_config(cfg), today=TODAY)
    _config(tmp_path, standin.url, rows[5:])
    report = run_once(load_config(cfg), today=TODAY)
    (event,) = _pending(_logs_without_secrets)
    assert event["approve"] == f"syncd approve {report.pending_plan} --config {cfg}"


def test_the_same_blocked_changes_keep_their_plan_id(tmp_path: Path,
                                                     standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows)
    run_once(load_config(cfg), today=TODAY)
    _config(tmp_path, standin.url, rows[5:])
    first = run_once(load_config(cfg), today=TODAY)
    second = run_once(load_config(cfg), today=TODAY)  # the daemon's next hour
    assert second.exit_code == ExitCode.GUARD_TRIPPED
    assert first.pending_plan is not None and second.pending_plan == first.pending_plan
    assert [p.plan_id for p in StateDir(tmp_path / "state").list_plans()] == [first.pending_plan]


def test_approving_a_superseded_plan_applies_what_it_held_and_names_the_current_one(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows)
    run_once(load_config(cfg), today=TODAY)
    _config(tmp_path, standin.url, rows[5:])
    reviewed = run_once(load_config(cfg), today=TODAY).pending_plan
    _config(tmp_path, standin.url, rows[6:])  # one more leaves: a different plan
    current = run_once(load_config(cfg), today=TODAY).pending_plan
    assert reviewed is not None and current is not None and current != reviewed

    outcome = approve(load_config(cfg), reviewed, today=TODAY)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert f"superseded by {current}" in outcome.message
    ended = sorted(u for u, v in roster(standin).items() if v.get("active_to"))
    # What the admin reviewed, not the sixth person who left after it.
    assert ended == [f"user0000{i}@example.com" for i in range(5)]
    assert [p.plan_id for p in StateDir(tmp_path / "state").list_plans()] == [current]
