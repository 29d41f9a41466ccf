"""Crash consistency: `syncd once` killed with SIGKILL at random points of its apply
phase, then a normal run. The roster must equal the desired one, with no duplicate
ids (case-insensitively) and no wrong active_to.

The stand-in is slowed down per write call and batch_size is small, so the apply
phase spans several hundred milliseconds and the kill lands in it: between calls,
while a call is in flight (the server may or may not apply it afterwards), or after
the run ended. bench/crash_trials.py runs the same trials many more times.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.core.model import id_key
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import config_text, person, write_csv

REPO = Path(__file__).resolve().parents[1]
SEEDED_FROM = "2026-01-01"
N_SEEDED = 60
DEPARTED = tuple(f"user{i:05d}@example.com" for i in range(56, 60))   # 4 of 60: under 10%
UPDATED = tuple(range(0, 12, 2))                                       # 6 department changes
INSERTED = tuple(range(100, 112))                                      # 12 new people
RETURNING = "user00070@example.com"
MIXED_CASE = {3: "User00003@Example.COM", 9: "USER00009@example.com"}  # as Nebuly holds them
BATCH_SIZE = 2
WRITE_DELAY = 0.03
# Write calls one full run makes: ceil(12 / 2) inserts + ceil((6 + 1 + 4) / 2) updates.
WRITE_CALLS = 6 + 6


def nebuly_id(i: int) -> str:
    return MIXED_CASE.get(i, f"user{i:05d}@example.com")


def seed_users() -> list[dict[str, Any]]:
    users = [{"end_user": nebuly_id(i), "tags": {"department": "Sales", "region": "FR"},
              "active_from": SEEDED_FROM, "active_to": None} for i in range(N_SEEDED)]
    users.append({"end_user": RETURNING, "tags": {"department": "Sales", "region": "FR"},
                  "active_from": SEEDED_FROM, "active_to": "2026-03-01"})
    return users


def directory_rows() -> list[dict[str, str]]:
    rows = []
    for i in range(N_SEEDED):
        if f"user{i:05d}@example.com" in DEPARTED:
            continue
        row = person(i, department="Legal" if i in UPDATED else "Sales")
        if i == 9:
            row["email"] = "user00009@EXAMPLE.com"  # a third spelling of the same id
        rows.append(row)
    rows.append(person(70))
    rows += [person(i, department="Ops") for i in INSERTED]
    rows[-1]["email"] = "User00111@Example.com"
    return rows


def expected_roster(today: date) -> dict[str, tuple[dict[str, str], str, str | None]]:
    """end_user -> (tags, active_from, active_to) once converged."""
    want: dict[str, tuple[dict[str, str], str, str | None]] = {}
    for i in range(N_SEEDED):
        gone = f"user{i:05d}@example.com" in DEPARTED
        tags = {"department": "Legal" if i in UPDATED else "Sales", "region": "FR"}
        want[nebuly_id(i)] = (tags, SEEDED_FROM, today.isoformat() if gone else None)
    want[RETURNING] = ({"department": "Sales", "region": "FR"}, SEEDED_FROM, None)
    for i in INSERTED:
        want[f"user{i:05d}@example.com"] = ({"department": "Ops", "region": "FR"},
                                            today.isoformat(), None)
    return want


def actual_roster(standin: NebulyStandIn) -> dict[str, tuple[dict[str, str], str, str | None]]:
    return {u["end_user"]: (u["tags"], u["active_from"], u.get("active_to"))
            for u in standin.users()}


def roster_problems(standin: NebulyStandIn, today: date) -> list[str]:
    users = standin.users()
    problems = []
    keys = [id_key(u["end_user"]) for u in users]
    if len(keys) != len(set(keys)):
        problems.append(f"duplicate ids: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    want, got = expected_roster(today), actual_roster(standin)
    for end_user in sorted(set(want) | set(got)):
        if want.get(end_user) != got.get(end_user):
            problems.append(f"{end_user}: want {want.get(end_user)}, got {got.get(end_user)}")
    return problems


@dataclass
class Trial:
    seed: int
    kill_after: float          # seconds after Nebuly answered the GET
    writes_before_kill: int    # write calls the stand-in had completed at the kill
    exited_before_kill: bool   # the run had already finished
    dropped_in_flight: bool    # in-flight requests were dropped (else left to land)
    runs_to_converge: int = 0  # normal runs until the roster was right (0: never)
    problems: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.runs_to_converge > 0 and not self.problems


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


def restart(standin: NebulyStandIn) -> None:
    """Drop every request still in flight (they are never applied); same port, same roster."""
    port = int(standin.url.rsplit(":", 1)[1])
    standin.stop()
    standin.start(port=port)


def crash_trial(standin: NebulyStandIn, workdir: Path, seed: int, max_runs: int = 3) -> Trial:
    rng = random.Random(seed)
    standin.clear_faults()
    standin.seed(seed_users())
    standin.reset_calls()
    csv_path = write_csv(workdir / "roster.csv", directory_rows())
    cfg = workdir / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path, nebuly=f"  batch_size: {BATCH_SIZE}\n"),
                   encoding="utf-8")
    standin.inject(Fault(method="PUT", delay=WRITE_DELAY, times=-1),
                   Fault(method="POST", delay=WRITE_DELAY, times=-1))
    kill_after = rng.uniform(0, WRITE_CALLS * WRITE_DELAY * 1.3)
    proc = subprocess.Popen([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        got_get = _wait_for(lambda: any(c.method == "GET" for c in standin.calls)
                            or proc.poll() is not None, 60)
        assert got_get, "syncd never read Nebuly"
        time.sleep(kill_after)
        early_exit = proc.poll()
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    writes = standin.write_calls()
    standin.clear_faults()
    drop = rng.random() < 0.5
    if drop:
        restart(standin)
    else:
        # Left to land: let them land before the normal run, or one may be counted
        # as a write of the run after it.
        assert _wait_for(lambda: standin.in_flight() == 0, 10), "a request never finished"
    trial = Trial(seed, kill_after, writes, early_exit is not None, drop)
    if early_exit not in (None, 0):
        trial.problems.append(f"syncd once exited {early_exit} before the kill")
    today = datetime.now(UTC).date()
    config = load_config(cfg)
    for run in range(1, max_runs + 1):
        report = run_once(config, today=today)
        if report.exit_code == ExitCode.OK and not roster_problems(standin, today):
            trial.runs_to_converge = run
            break
    trial.problems += roster_problems(standin, today)
    if trial.converged:
        standin.reset_calls()
        again = run_once(config, today=today)
        if again.exit_code != ExitCode.OK or standin.write_calls():
            trial.problems.append(f"a further run was not a no-op: {again.summary()}")
    return trial


CI_TRIALS = 30


def test_kill_minus_nine_during_apply_then_one_normal_run_converges(
        standin: NebulyStandIn, tmp_path: Path) -> None:
    trials = [crash_trial(standin, tmp_path, seed, max_runs=1) for seed in range(CI_TRIALS)]
    failed = [t for t in trials if not t.converged]
    assert not failed, failed
    # The kills really landed inside the apply phase, not only before or after it.
    assert sum(1 for t in trials if 0 < t.writes_before_kill < WRITE_CALLS
               and not t.exited_before_kill) >= CI_TRIALS // 3
