"""Fault matrix: every Nebuly fault, on the read and on each write, with inserts,
updates, a reactivation and departures pending.

For each fault the run either completes or fails cleanly with its documented exit
code, never deactivates anyone who is still in the directory, and the next clean
run converges to exactly the desired roster; a further run writes nothing.
docs/fault-matrix.md lists these cases; `test_fault_matrix_doc_is_true` keeps it honest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.core.model import id_key
from syncd.run.orchestrator import ExitCode, RunReport, run_once
from tests.conftest import CANARIES, config_text, person, write_csv

TODAY = date(2026, 11, 22)
SEEDED_FROM = "2026-01-01"
LEFT_ON = "2026-06-01"
N_SEEDED = 60
DEPARTED = {f"user{i:05d}@example.com" for i in (57, 58, 59)}
RETURNING = "user00070@example.com"
MIXED_CASE_IN_NEBULY = "User00005@Example.COM"
# Users a lying GET leaves out (lower-case ids only: see the doc on mixed case).
HIDDEN = [f"user{i:05d}@example.com" for i in (*range(10, 20), 57)]
DOCUMENTED_EXIT_CODES = {int(code) for code in ExitCode}
REPO = Path(__file__).resolve().parents[1]


def nebuly_id(i: int) -> str:
    return MIXED_CASE_IN_NEBULY if i == 5 else f"user{i:05d}@example.com"


def seed_users() -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    for i in range(N_SEEDED):
        tags = {"department": "Sales", "region": "FR"}
        if i == 1:
            tags["cost_center"] = "42"  # another writer's tag: kept on update
        users.append({"end_user": nebuly_id(i), "tags": tags, "active_from": SEEDED_FROM,
                      "active_to": None})
    users.append({"end_user": RETURNING, "tags": {"department": "Sales", "region": "FR"},
                  "active_from": SEEDED_FROM, "active_to": LEFT_ON})
    return users


def directory_rows() -> list[dict[str, str]]:
    rows = [person(i) for i in range(N_SEEDED) if f"user{i:05d}@example.com" not in DEPARTED]
    rows[1]["department"] = "Legal"                    # update, keeps cost_center
    rows[2]["country"] = "DE"                          # update
    rows[5]["country"] = "IT"                          # update of a mixed-case Nebuly id
    rows[6]["email"] = rows[6]["email"].upper()        # same person, other case: no change
    rows.append(person(70))                            # reactivation
    rows += [person(i, department="Ops") for i in range(100, 105)]  # inserts
    rows[-2]["email"] = "User00103@Example.com"        # inserted lower-case
    return rows


def expected_roster(today: date) -> dict[str, dict[str, Any]]:
    """end_user -> record, exactly as Nebuly must hold it once converged."""
    want: dict[str, dict[str, Any]] = {}
    for user in seed_users():
        want[user["end_user"]] = {"tags": dict(user["tags"]), "active_from": SEEDED_FROM,
                                  "active_to": None}
    want[nebuly_id(1)]["tags"]["department"] = "Legal"
    want[nebuly_id(2)]["tags"]["region"] = "DE"
    want[nebuly_id(5)]["tags"]["region"] = "IT"
    for gone in DEPARTED:
        want[gone]["active_to"] = today.isoformat()
    for i in range(100, 105):
        want[f"user{i:05d}@example.com"] = {"tags": {"department": "Ops", "region": "FR"},
                                            "active_from": today.isoformat(), "active_to": None}
    return want


def actual_roster(standin: NebulyStandIn) -> dict[str, dict[str, Any]]:
    return {u["end_user"]: {"tags": u["tags"], "active_from": u.get("active_from"),
                            "active_to": u.get("active_to")} for u in standin.users()}


def assert_no_spurious_deactivation(standin: NebulyStandIn, today: date) -> None:
    """Only departed people may carry an active_to of today; the returning person may
    still carry their old one; nobody else has any. No id exists twice in any case."""
    users = standin.users()
    keys = [id_key(u["end_user"]) for u in users]
    assert len(keys) == len(set(keys)), "an id exists twice (case-insensitively)"
    for user in users:
        active_to = user.get("active_to")
        if active_to is None:
            continue
        if user["end_user"] in DEPARTED:
            assert active_to == today.isoformat(), user
        else:
            assert user["end_user"] == RETURNING and active_to == LEFT_ON, user


def quiesce(standin: NebulyStandIn) -> None:
    """Clear the faults and end every request still in flight.

    A request a timed-out client gave up on is still sleeping in the stand-in and
    would be applied later; stopping the server drops it (what a server that never
    got the request would do). It restarts on the same port, roster intact.
    """
    standin.clear_faults()
    port = int(standin.url.rsplit(":", 1)[1])
    standin.stop()
    standin.start(port=port)


# -- the matrix ------------------------------------------------------------------------

Build = Callable[[str, int], list[Fault]]


def _roster_body(users: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"users": users})


def _truncated_roster() -> bytes:
    return _roster_body([u for u in seed_users() if u["end_user"] not in HIDDEN])


@dataclass(frozen=True)
class Kind:
    """One kind of fault: how to inject it on a method, and the exit code the faulty
    run must end with, as (transient, persistent), on the GET and on a write."""

    name: str
    build: Build
    on_read: tuple[int, int] | None
    on_write: tuple[int, int] | None
    nebuly: str = ""
    # A GET that hides users makes syncd re-insert them; the insert meets the
    # existing user and falls back to an update that carries today's active_from.
    keeps_active_from: bool = True


OK, NEB, PARTIAL = int(ExitCode.OK), int(ExitCode.NEBULY_FAILED), int(ExitCode.PARTIAL_FAILURE)
FAST = "  max_retries: 2\n"
KINDS = [
    Kind("429-retry-after",
         lambda m, t: [Fault(method=m, status=429, retry_after="1", times=t)],
         (OK, NEB), (OK, NEB), FAST),
    Kind("429-no-retry-after", lambda m, t: [Fault(method=m, status=429, times=t)],
         (OK, NEB), (OK, NEB), FAST),
    Kind("500", lambda m, t: [Fault(method=m, status=500, times=t)], (OK, NEB), (OK, NEB), FAST),
    Kind("502", lambda m, t: [Fault(method=m, status=502, times=t)], (OK, NEB), (OK, NEB), FAST),
    Kind("503", lambda m, t: [Fault(method=m, status=503, retry_after="2", times=t)],
         (OK, NEB), (OK, NEB), FAST),
    Kind("timeout", lambda m, t: [Fault(method=m, delay=0.8, times=t)],
         (OK, NEB), (OK, NEB), FAST + "  timeout: 0.25s\n"),
    Kind("reset-mid-response", lambda m, t: [Fault(method=m, reset_mid_body=True, times=t)],
         (OK, NEB), (OK, NEB), FAST),
    Kind("dropped-connection", lambda m, t: [Fault(method=m, drop=True, times=t)],
         (OK, NEB), (OK, NEB), FAST),
    # Writes: only the first user of each batch is applied and returned.
    # GET: a roster with some users missing (applies to GET only via a raw body).
    Kind("partial-success",
         lambda m, t: ([Fault(method=m, body=_truncated_roster(), times=t)] if m == "GET"
                       else [Fault(method=m, partial=1, times=t)]),
         # A GET that keeps leaving users out: their inserts are not taken, the re-read
         # does not show them either, so they are reported (6), never overwritten blindly.
         (OK, PARTIAL), (PARTIAL, PARTIAL)),
    Kind("413", lambda m, t: [Fault(method=m, status=413, times=t)],
         (NEB, NEB), (OK, PARTIAL)),
    Kind("slow", lambda m, t: [Fault(method=m, delay=0.15, times=t)], (OK, OK), (OK, OK)),
    Kind("invalid-json", lambda m, t: [Fault(method=m, body=b'{"users": [{"end_user": ',
                                             times=t)],
         (NEB, NEB), (PARTIAL, PARTIAL)),
    Kind("unexpected-shape",
         lambda m, t: [Fault(method=m, body=(b'{"users": {"end_user": "a@x.com"}}' if m == "GET"
                                             else b'{"result": "ok"}'), times=t)],
         (NEB, NEB), (PARTIAL, PARTIAL)),
    Kind("applied-then-502", lambda m, t: [Fault(method=m, apply_then_fail=502, times=t)],
         None, (OK, NEB), FAST),
]
KINDS_BY_NAME = {kind.name: kind for kind in KINDS}
# In platform-users, PUT inserts and POST updates (updates, reactivations, departures).
METHODS = {"GET": "read", "PUT": "insert", "POST": "update"}


def _cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        for method in METHODS:
            codes = kind.on_read if method == "GET" else kind.on_write
            if codes is None:
                continue
            for persistent, code in zip((False, True), codes, strict=True):
                name = f"{method}-{kind.name}-{'persistent' if persistent else 'transient'}"
                cases.append(pytest.param(kind, method, persistent, code, id=name))
    return cases


def _setup(standin: NebulyStandIn, tmp_path: Path, *, nebuly: str = "",
           policy: str = "") -> Path:
    standin.seed(seed_users())
    csv_path = write_csv(tmp_path / "roster.csv", directory_rows())
    cfg = tmp_path / "syncd.yaml"
    # batch_size 4: each write stream takes two calls, so a persistent fault can
    # abort an apply half-way.
    cfg.write_text(config_text(standin.url, csv_path, policy=policy,
                               nebuly="  batch_size: 4\n" + nebuly), encoding="utf-8")
    return cfg


def _run(cfg: Path) -> RunReport:
    return run_once(load_config(cfg), today=TODAY, sleep=lambda _: None)


def _converges(standin: NebulyStandIn, cfg: Path, want: dict[str, dict[str, Any]],
               keeps_active_from: bool = True) -> None:
    quiesce(standin)
    clean = _run(cfg)
    assert clean.exit_code == ExitCode.OK, clean.summary()
    got = actual_roster(standin)
    if not keeps_active_from:
        for record in (*got.values(), *want.values()):
            record.pop("active_from")
    assert got == want
    standin.reset_calls()
    again = _run(cfg)
    assert again.exit_code == ExitCode.OK and standin.write_calls() == 0, again.summary()


@pytest.mark.parametrize(("kind", "method", "persistent", "exit_code"), _cases())
def test_nebuly_fault_matrix(standin: NebulyStandIn, tmp_path: Path, kind: Kind, method: str,
                             persistent: bool, exit_code: int) -> None:
    cfg = _setup(standin, tmp_path, nebuly=kind.nebuly)
    standin.inject(*kind.build(method, -1 if persistent else 1))
    report = _run(cfg)
    assert int(report.exit_code) in DOCUMENTED_EXIT_CODES
    assert report.exit_code == exit_code, report.summary()
    assert_no_spurious_deactivation(standin, TODAY)
    if method == "GET" and exit_code not in (ExitCode.OK, ExitCode.PARTIAL_FAILURE):
        # A failed read writes nothing at all.
        assert standin.write_calls() == 0
        assert report.summary().get("write_calls", 0) == 0
    _converges(standin, cfg, expected_roster(TODAY), kind.keeps_active_from)


# Deletes (policy.departed: delete): the DELETE call's own faults. Nebuly's delete
# answers only {"message"}, with no per-user result: a 200 that applied nothing or
# part of the batch cannot be seen, and the next run's GET finds and deletes the rest.
DELETE_KINDS = [
    ("503", (OK, NEB)), ("429-retry-after", (OK, NEB)), ("timeout", (OK, NEB)),
    ("reset-mid-response", (OK, NEB)), ("dropped-connection", (OK, NEB)),
    ("applied-then-502", (OK, NEB)), ("413", (OK, PARTIAL)), ("partial-success", (OK, OK)),
    ("invalid-json", (OK, OK)), ("slow", (OK, OK)),
]


@pytest.mark.parametrize(("kind_name", "persistent", "exit_code"), [
    pytest.param(name, persistent, codes[persistent],
                 id=f"DELETE-{name}-{'persistent' if persistent else 'transient'}")
    for name, codes in DELETE_KINDS for persistent in (False, True)])
def test_nebuly_delete_fault_matrix(standin: NebulyStandIn, tmp_path: Path, kind_name: str,
                                    persistent: bool, exit_code: int) -> None:
    kind = KINDS_BY_NAME[kind_name]
    cfg = _setup(standin, tmp_path, nebuly=kind.nebuly, policy="  departed: delete")
    standin.inject(*kind.build("DELETE", -1 if persistent else 1))
    report = _run(cfg)
    assert report.exit_code == exit_code, report.summary()
    present = {u["end_user"] for u in standin.users()}
    # Only departed people may be gone; nobody gets an active_to in delete mode.
    assert set(expected_roster(TODAY)) - DEPARTED <= present
    assert not any(u.get("active_to") for u in standin.users() if u["end_user"] != RETURNING)
    want = {k: v for k, v in expected_roster(TODAY).items() if k not in DEPARTED}
    _converges(standin, cfg, want)


def test_deletes_split_a_batch_the_server_finds_too_large(tmp_path: Path) -> None:
    """A server with a smaller batch limit than batch_size answers 413 to every
    delete of a full batch: the batch must be split or the deletes never converge."""
    from tests.conftest import CANARY_API_KEY

    with NebulyStandIn(api_key=CANARY_API_KEY, max_batch=2) as server:
        cfg = _setup(server, tmp_path, policy="  departed: delete")
        first = _run(cfg)
        assert first.exit_code == ExitCode.OK, first.summary()
        want = {k: v for k, v in expected_roster(TODAY).items() if k not in DEPARTED}
        assert actual_roster(server) == want


# -- the same faults through the CLI: exit code, no traceback, last line the summary ----

CLI_CASES = [
    ("GET", "503", True), ("PUT", "413", True), ("PUT", "invalid-json", False),
    ("POST", "reset-mid-response", True),
]


@pytest.mark.parametrize(("method", "kind_name", "persistent"), CLI_CASES,
                         ids=[f"{m}-{k}-{'persistent' if p else 'transient'}"
                              for m, k, p in CLI_CASES])
def test_nebuly_faults_through_the_cli(standin: NebulyStandIn, tmp_path: Path, method: str,
                                       kind_name: str, persistent: bool) -> None:
    kind = KINDS_BY_NAME[kind_name]
    codes = kind.on_read if method == "GET" else kind.on_write
    assert codes is not None
    # Real sleeps here: keep retries few and Retry-After at zero.
    cfg = _setup(standin, tmp_path, nebuly="  max_retries: 1\n")
    faults = [replace(f, retry_after="0") if f.status is not None else f
              for f in kind.build(method, -1 if persistent else 1)]
    standin.inject(*faults)
    today = datetime.now(UTC).date()
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert "Traceback" not in done.stderr + done.stdout
    assert not any(c in done.stderr + done.stdout for c in CANARIES)
    assert done.returncode == codes[persistent], done.stderr
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["event"] == "sync.finished" and summary["exit_code"] == done.returncode
    assert_no_spurious_deactivation(standin, today)
    quiesce(standin)
    assert run_once(load_config(cfg), today=today).exit_code == ExitCode.OK
    assert actual_roster(standin) == expected_roster(today)


# -- the doc stays true ------------------------------------------------------------------

def _doc_tables() -> list[list[list[str]]]:
    """Every markdown table of the doc: a list of rows (header first) of cells."""
    lines = (REPO / "docs" / "fault-matrix.md").read_text(encoding="utf-8").splitlines()
    tables: list[list[list[str]]] = []
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if re.fullmatch(r"[|\s:-]+", line):
            continue
        if i + 1 < len(lines) and re.fullmatch(r"\|[|\s:-]+", lines[i + 1]):
            tables.append([cells])  # a header: the separator row follows it
        else:
            tables[-1].append(cells)
    return tables


def _test_functions() -> dict[str, set[str]]:
    """test file name -> names of the test functions it defines."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        found[path.name] = set(re.findall(r"^(?:async )?def (test_\w+)\(", text, re.M))
    return found


def _param_ids() -> dict[str, set[str]]:
    """The parametrised tests of this file -> their case ids."""
    return {
        "test_nebuly_fault_matrix": {p.id for p in _cases()},
        "test_nebuly_delete_fault_matrix": {
            f"DELETE-{name}-{'persistent' if persistent else 'transient'}"
            for name, _ in DELETE_KINDS for persistent in (False, True)},
        "test_nebuly_faults_through_the_cli": {
            f"{m}-{k}-{'persistent' if p else 'transient'}" for m, k, p in CLI_CASES},
    }


def test_fault_matrix_doc_is_true() -> None:
    functions = _test_functions()
    every = set().union(*functions.values())
    params = _param_ids()
    matrices = [t for t in _doc_tables() if t[0][-1].lower() == "test"]
    assert len(matrices) >= 5, "the doc lost its fault tables"
    cited: set[str] = set()
    for table in matrices:
        for row in table[1:]:
            assert len(row) == len(table[0]), f"malformed row: {row}"
            names = re.findall(r"`([^`]+)`", row[-1])
            assert names, f"row cites no test: {row}"
            for name in names:
                match = re.fullmatch(r"(test_\w+)(?:\[(.+)\])?", name)
                assert match, f"not a test name: {name}"
                func, param = match.groups()
                assert func in every, f"{func} does not exist in tests/"
                if param is not None:
                    assert func in params, f"{name}: cannot check the case id"
                    assert param in params[func], f"{name}: no such case"
                cited.add(func)
    # Every kind of Nebuly fault in this file has a row.
    for kind in KINDS:
        assert any(f"-{kind.name}-" in name for table in matrices for row in table
                   for name in re.findall(r"`([^`]+)`", row[-1])), kind.name
    assert {"test_kill_minus_nine_during_apply_then_one_normal_run_converges",
            "test_model_based_sync",
            "test_broken_config_is_one_clear_line_and_exit_2"} <= cited
