"""`syncd status` and `syncd explain ID` (issue 18): the state at a glance, and why
one person is or is not synced."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import config_text, person, run_cli, write_csv

TODAY = date(2026, 11, 22)


def _config(tmp_path: Path, url: str, rows: list[dict[str, str]], *, policy: str = "",
            source: str = "", nebuly: str = "") -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path, policy=policy, source=source, nebuly=nebuly)
                   + f"state_dir: {tmp_path / 'state'}\n")
    return cfg


def test_status_shows_the_last_run_the_pending_plan_and_what_it_blocks(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(15)] + [person(i, "Legal") for i in range(15, 20)]
    cfg = _config(tmp_path, standin.url, rows)
    assert "none recorded yet" in run_cli("status", "--config", str(cfg)).stdout
    run_once(load_config(cfg))
    cfg = _config(tmp_path, standin.url, rows[:15])  # all of Legal leaves: over 10%
    report = run_once(load_config(cfg))
    assert report.exit_code == ExitCode.GUARD_TRIPPED

    done = run_cli("status", "--config", str(cfg), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["last_run"]["summary"]["status"] == "guard_tripped"
    assert doc["last_run"]["summary"]["blocked"] == 5
    assert doc["last_run"]["consecutive_failures"] == 0
    (plan,) = doc["pending_plans"]
    assert plan["plan_id"] == report.pending_plan and plan["deactivate"] == 5
    assert plan["leaving_by_tag"]["department"] == {"Legal": 5}
    text = run_cli("status", "--config", str(cfg)).stdout
    assert "leaving by department: Legal 5" in text
    assert f"syncd approve {report.pending_plan} --config {cfg} --dry-run" in text


def test_status_and_plans_show_a_pending_plan_with_the_same_counts(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    """One row for a pending plan: status shows what `syncd plans` lists (but `users`),
    in the key order its JSON has always had, then what the plan blocks."""
    rows = [person(i) for i in range(15)] + [person(i, "Legal") for i in range(15, 20)]
    guards = "  max_tag_removals: 0"
    run_once(load_config(_config(tmp_path, standin.url, rows, policy=guards)))
    rows = rows[:15]
    rows[3] = person(3, department="")  # a tag taken away: held by max_tag_removals 0
    cfg = _config(tmp_path, standin.url, rows, policy=guards)
    assert run_once(load_config(cfg)).exit_code == ExitCode.GUARD_TRIPPED

    (listed,) = json.loads(run_cli("plans", "--config", str(cfg), "--json").stdout)
    (shown,) = json.loads(run_cli("status", "--config", str(cfg), "--json").stdout)[
        "pending_plans"]
    assert (listed["deactivate"], listed["delete"], listed["tag_removal"]) == (5, 0, 1)
    assert list(shown) == ["plan_id", "created_at", "expires_at", "expired", "reason",
                           "deactivate", "delete", "tag_removal", "leaving_by_tag",
                           "tags_removed", "approve"]
    assert {k: v for k, v in listed.items() if k != "users"} == {
        k: shown[k] for k in listed if k != "users"}
    assert shown["tags_removed"] == {"department": 1}


def test_status_counts_the_failure_streak_and_shows_people_in_grace(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows, policy="  grace_runs: 3")
    run_once(load_config(cfg), today=TODAY)
    cfg = _config(tmp_path, standin.url, rows[1:], policy="  grace_runs: 3")
    run_once(load_config(cfg), today=TODAY)
    down = _config(tmp_path, "http://127.0.0.1:9", rows[1:], policy="  grace_runs: 3",
                   nebuly="  max_retries: 0")
    for _ in range(2):
        assert run_once(load_config(down), today=TODAY).exit_code == ExitCode.NEBULY_FAILED
    doc = json.loads(run_cli("status", "--config", str(cfg), "--json").stdout)
    assert doc["last_run"]["consecutive_failures"] == 2
    assert doc["last_run"]["summary"]["status"] == "nebuly_failed"
    assert [g["end_user"] for g in doc["in_grace"]] == ["user00000@example.com"]


def test_explain_says_which_source_read_a_person_and_what_the_next_run_does(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows, source='    exclude_ids: ["^user00003"]')
    run_once(load_config(cfg))
    moved = [*rows[:2], person(2, "Ops"), *rows[3:]]
    cfg = _config(tmp_path, standin.url, moved, source='    exclude_ids: ["^user00003"]')

    read = json.loads(run_cli("explain", "USER00002@example.com", "--config", str(cfg),
                              "--json").stdout)
    (hr,) = read["sources"]
    assert hr["decision"] == "read" and hr["record"] == "roster.csv line 4"
    assert read["next_run"]["action"] == "update"
    assert read["next_run"]["after"]["tags"]["department"] == "Ops"

    excluded = run_cli("explain", "user00003@example.com", "--config", str(cfg))
    assert "excluded" in excluded.stdout and "'^user00003'" in excluded.stdout

    calls = len(standin.calls)
    absent = run_cli("explain", "nobody@example.com", "--config", str(cfg), "--offline")
    assert absent.returncode == 0
    assert "not read: no row of" in absent.stdout and "desired roster: no" in absent.stdout
    assert len(standin.calls) == calls, "--offline read Nebuly"
