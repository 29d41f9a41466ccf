"""The promises an admin relies on, each broken once by a rule written twice.

One test per case found in review; each failed before the core took the rule
over and passes now. The properties in test_core_properties.py generalise them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.core.dates import parse_date
from syncd.nebuly.client import decode_roster
from syncd.run.orchestrator import ExitCode, approve, rollback, run_once
from syncd.run.state import StateDir
from tests.conftest import CANARY_API_KEY, config_text, person, roster, write_csv

TODAY = date(2026, 11, 22)


def utc_today() -> date:
    return datetime.now(UTC).date()
OWNER = "  owner_tag: {key: managed_by, value: syncd}"


def held(end_user: str, **extra: Any) -> dict[str, Any]:
    """A roster entry as Nebuly holds it."""
    return {"end_user": end_user, "tags": {"department": "Sales", "region": "FR"},
            "active_from": "2020-01-01", "active_to": None, **extra}


def configured(tmp_path: Path, url: str, rows: list[dict[str, str]], *, policy: str = "",
               source: str = "", state: bool = False) -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    text = config_text(url, csv_path, policy=policy, source=source)
    cfg.write_text(text + (f"state_dir: {tmp_path / 'state'}\n" if state else ""))
    return cfg


def hide_from_list(standin: NebulyStandIn, *end_users: str) -> None:
    """The next GET lists every user but these (an eventually consistent list)."""
    shown = [u for u in standin.users() if u["end_user"] not in end_users]
    standin.inject(Fault(method="GET", body=msgspec.json.encode({"users": shown})))


# 1 ---------------------------------------------------------------------------------

def test_1_an_insert_that_meets_a_foreign_user_leaves_him_byte_identical(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    foreign = held("user00000@example.com", tags={"cost_center": "42", "department": "Ops"})
    standin.seed([foreign])
    hide_from_list(standin, "user00000@example.com")
    cfg = configured(tmp_path, standin.url, [person(0), person(1)], policy=OWNER)
    report = run_once(load_config(cfg), today=TODAY)
    assert roster(standin)["user00000@example.com"] == foreign
    assert "user00001@example.com" in roster(standin)
    assert report.summary()["write_calls"] == standin.write_calls()


def test_1_an_insert_that_meets_an_owned_user_updates_him_keeping_other_tags(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    mine = held("user00000@example.com",
                tags={"cost_center": "42", "department": "Ops", "managed_by": "syncd"})
    standin.seed([mine])
    hide_from_list(standin, "user00000@example.com")
    cfg = configured(tmp_path, standin.url, [person(0)], policy=OWNER)
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    assert roster(standin)["user00000@example.com"]["tags"] == {
        "cost_center": "42", "department": "Sales", "region": "FR", "managed_by": "syncd"}
    assert roster(standin)["user00000@example.com"]["active_from"] == "2020-01-01"
    # insert (not applied) + re-read + update; every HTTP call counted
    assert report.summary()["write_calls"] == standin.write_calls() == 2


# 2 ---------------------------------------------------------------------------------

def test_2_a_person_unreadable_in_one_source_is_untouched_though_another_reads_him(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    gone = held("user00000@example.com", active_to="2026-01-01",
                tags={"department": "Old", "region": "FR", "title": "Analyst"})
    standin.seed([gone])
    titles = write_csv(tmp_path / "titles.csv",
                       [{**person(0), "title": "not-a-date"}, {**person(1), "title": "2020-01-01"}])
    second = f"""  - name: titles
    type: csv
    path: {titles}
    end_user: "{{email}}"
    active_from: "{{title}}"
    tags:
      title: "{{title}}"
"""
    cfg = configured(tmp_path, standin.url, [person(0), person(1)], source=second)
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    assert roster(standin)["user00000@example.com"] == gone
    assert "user00001@example.com" in roster(standin)


# 3 ---------------------------------------------------------------------------------

def test_3_upsert_only_never_deactivates_a_source_end_date(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.seed([held("user00000@example.com")])
    rows = [{**person(0), "title": "2026-01-31"}]
    cfg = configured(tmp_path, standin.url, rows,
                     policy="  mode: upsert-only\n  max_deactivations: 5",
                     source='    active_to: "{title}"')
    report = run_once(load_config(cfg), today=TODAY)
    assert report.summary()["deactivated"] == 0
    assert roster(standin)["user00000@example.com"]["active_to"] is None


# 4 ---------------------------------------------------------------------------------

def _blocked_run(tmp_path: Path, standin: NebulyStandIn, seeded: list[dict[str, Any]],
                 rows: list[dict[str, str]], source: str = "") -> tuple[Path, str]:
    standin.seed(seeded)
    cfg = configured(tmp_path, standin.url, rows, source=source, state=True,
                     policy="  max_deactivations: 0")
    blocked = run_once(load_config(cfg))
    assert blocked.exit_code == ExitCode.GUARD_TRIPPED, blocked.summary()
    assert blocked.pending_plan is not None
    return cfg, blocked.pending_plan


def test_4_approve_applies_source_end_dates_it_blocked(tmp_path: Path,
                                                       standin: NebulyStandIn) -> None:
    rows = [{**person(0), "title": "2026-01-31"}, person(1)]
    cfg, plan_id = _blocked_run(tmp_path, standin, [held("user00000@example.com")], rows,
                                source='    active_to: "{title}"')
    outcome = approve(load_config(cfg), plan_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert roster(standin)["user00000@example.com"]["active_to"] == "2026-01-31"
    again = run_once(load_config(cfg))
    assert again.plan is not None and again.plan.is_empty, again.summary()


def test_4_approve_deactivates_an_active_person_with_a_future_end(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    leaving = held("user00000@example.com", active_to="2027-06-30")
    cfg, plan_id = _blocked_run(tmp_path, standin, [leaving], [person(1)])
    outcome = approve(load_config(cfg), plan_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert roster(standin)["user00000@example.com"]["active_to"] == utc_today().isoformat()
    again = run_once(load_config(cfg))
    assert again.plan is not None and again.plan.is_empty, again.summary()


def test_4_approve_picks_the_entry_the_planner_picks_among_case_variants(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    # Nebuly holds the same person twice, under ids that differ only in case.
    twins = [held("user00000@example.com"), held("User00000@Example.com")]
    cfg, plan_id = _blocked_run(tmp_path, standin, twins, [person(1)])
    outcome = approve(load_config(cfg), plan_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert roster(standin)["user00000@example.com"]["active_to"] == utc_today().isoformat()
    again = run_once(load_config(cfg))
    assert again.plan is not None and again.plan.is_empty, again.summary()


# 5 ---------------------------------------------------------------------------------

def test_5_rollback_undoes_an_insert_answered_with_an_error_and_retried(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.inject(Fault(method="PUT", apply_then_fail=502))
    cfg = configured(tmp_path, standin.url, [person(0), person(1)], state=True)
    report = run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.OK, report.summary()
    assert report.summary()["write_calls"] == standin.write_calls()
    actions = {a for a, _, _ in StateDir(tmp_path / "state").load_run(report.run_id)}
    assert actions == {"insert"}
    outcome = rollback(load_config(cfg), report.run_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert standin.users() == []


def test_5_rollback_undoes_an_insert_answered_with_an_error_on_every_attempt(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.inject(Fault(method="PUT", apply_then_fail=502, times=-1))
    cfg = configured(tmp_path, standin.url, [person(0), person(1)], state=True)
    report = run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.NEBULY_FAILED, report.summary()
    assert len(standin.users()) == 2  # Nebuly applied them; the answers were lost
    recorded = StateDir(tmp_path / "state").load_run(report.run_id)
    assert sorted((a, after.end_user if after else None) for a, _, after in recorded) == [
        ("insert", "user00000@example.com"), ("insert", "user00001@example.com")]
    standin.clear_faults()
    outcome = rollback(load_config(cfg), report.run_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert standin.users() == []


def test_5_rollback_undoes_an_update_answered_with_an_error_on_every_attempt(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.seed([held("user00000@example.com")])
    standin.inject(Fault(method="POST", apply_then_fail=502, times=-1))
    cfg = configured(tmp_path, standin.url, [person(0, department="Ops")], state=True)
    report = run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.NEBULY_FAILED, report.summary()
    assert roster(standin)["user00000@example.com"]["tags"]["department"] == "Ops"
    recorded = StateDir(tmp_path / "state").load_run(report.run_id)
    assert [a for a, _, _ in recorded] == ["update"]
    standin.clear_faults()
    outcome = rollback(load_config(cfg), report.run_id)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert standin.users() == [held("user00000@example.com")]


def test_5_an_insert_that_meets_a_user_inserted_earlier_today_is_not_recorded_as_its_own(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = configured(tmp_path, standin.url, [person(0)], state=True)
    first = run_once(load_config(cfg), today=TODAY)
    assert first.exit_code == ExitCode.OK, first.summary()
    hide_from_list(standin, "user00000@example.com")  # the list has not caught up yet
    second = run_once(load_config(cfg), today=TODAY)
    assert second.exit_code == ExitCode.OK, second.summary()
    # He was there before the second run, exactly as it would insert him: it changed
    # nothing, so it has nothing to roll back (a rollback would delete him).
    assert second.summary()["inserted"] == 0
    assert not (tmp_path / "state" / "runs" / f"{second.run_id}.json").exists()
    assert len(standin.users()) == 1


def test_5_write_calls_count_retried_calls(tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.inject(Fault(method="PUT", status=503, times=2))
    cfg = configured(tmp_path, standin.url, [person(0)])
    report = run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)
    assert report.exit_code == ExitCode.OK
    assert report.summary()["write_calls"] == standin.write_calls() == 3


# 6 ---------------------------------------------------------------------------------

def test_6_dates_with_an_offset_are_utc_dates() -> None:
    assert parse_date("2026-01-31T23:30:00-05:00") == date(2026, 2, 1)
    assert parse_date("2026-02-01T01:30:00+02:00") == date(2026, 1, 31)
    assert parse_date("20260131233000-0500") == date(2026, 2, 1)
    assert parse_date("20260131233000.0Z") == date(2026, 1, 31)
    wire = [held("a@x.com", active_from="2026-01-31T23:30:00-05:00"),
            held("b@x.com", active_from="2026-01-31")]
    dates = {u.end_user: u.active_from for u in decode_roster(msgspec.json.encode(
        {"users": wire})).users}
    assert dates == {"a@x.com": date(2026, 2, 1), "b@x.com": date(2026, 1, 31)}


# 7 ---------------------------------------------------------------------------------

def test_7_leaving_before_the_start_never_ends_before_it_starts(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    standin.seed([held("user00000@example.com", active_from="2027-01-15")])
    cfg = configured(tmp_path, standin.url, [person(1)], policy="  max_deactivations: 5")
    run_once(load_config(cfg), today=TODAY)
    ended = roster(standin)["user00000@example.com"]
    assert ended["active_to"] is not None and ended["active_to"] >= ended["active_from"]


# 8 ---------------------------------------------------------------------------------

def test_8_exclude_ids_match_whatever_the_case(tmp_path: Path,
                                               standin: NebulyStandIn) -> None:
    rows = [person(0), {**person(1), "email": "SVC-Backup@example.com"}]
    cfg = configured(tmp_path, standin.url, rows, source='    exclude_ids: ["^SVC-"]')
    run_once(load_config(cfg), today=TODAY)
    assert set(roster(standin)) == {"user00000@example.com"}


# 9 ---------------------------------------------------------------------------------

def test_9_a_second_command_on_a_locked_state_dir_names_the_holder(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = configured(tmp_path, standin.url, [person(0)], state=True)
    cfg.write_text(cfg.read_text() + "state_lock_wait: 1s\n")
    from syncd.run.lock import StateLock

    with StateLock(tmp_path / "state", "syncd run (test holder)", wait=0):
        done = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config",
                               str(cfg)], capture_output=True, text=True, timeout=60,
                              check=False, env={**os.environ, "NEBULY_KEY": CANARY_API_KEY})
    assert done.returncode == 7, done.stderr  # ExitCode.STATE_LOCKED
    assert f"pid {os.getpid()}" in done.stderr and "syncd run (test holder)" in done.stderr
    assert standin.users() == []  # nothing was written while another command held it
    after = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert after.returncode == 0, after.stderr


# issue 18, finding 1: a typo in a tag template -------------------------------------

def test_a_template_typo_in_a_csv_source_is_an_error_naming_the_field(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = configured(tmp_path, standin.url, [person(i) for i in range(20)])
    cfg.write_text(cfg.read_text().replace('department: "{department}"',
                                           'department: "{dept}"'))
    report = run_once(load_config(cfg), today=TODAY)
    assert report.exit_code == ExitCode.SOURCE_FAILED
    assert "no column for tags.department: {dept}" in (report.error or "")
    assert standin.users() == []


def test_a_mass_tag_removal_is_blocked_not_applied_to_everyone(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = configured(tmp_path, standin.url, rows, state=True)
    assert run_once(load_config(cfg), today=TODAY).exit_code == ExitCode.OK
    before = roster(standin)
    # An export that lost the department values: every record maps no department.
    configured(tmp_path, standin.url, [{**r, "department": ""} for r in rows], state=True)
    blocked = run_once(load_config(cfg), today=TODAY)
    assert blocked.exit_code == ExitCode.GUARD_TRIPPED, blocked.summary()
    assert blocked.summary()["blocked_tag_removals"] == 20
    assert roster(standin) == before  # nobody lost a department
    assert blocked.pending_plan is not None
    outcome = approve(load_config(cfg), blocked.pending_plan, today=TODAY)
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert not any("department" in u["tags"] for u in standin.users())
    again = run_once(load_config(cfg), today=TODAY)
    assert again.plan is not None and again.plan.is_empty, again.summary()
