"""Security finding 4 of issue 17: the state directory was trusted blindly. Another
local user could plant a symlink that syncd wrote through, or a run record that
`rollback` applied. Each test failed before the fix."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.run.orchestrator import ExitCode
from tests.conftest import person, roster, run_cli


def _events(stderr: str, name: str) -> list[dict[str, Any]]:
    return [e for line in stderr.splitlines() if line.startswith("{")
            if (e := json.loads(line)).get("event") == name]


def _one_recorded_run(stateful: Any, tmp_path: Path) -> tuple[Path, str]:
    cfg = stateful([person(i) for i in range(10)])
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    (run_id,) = [p.stem for p in (tmp_path / "state" / "runs").iterdir()]
    return cfg, run_id


def test_4_state_files_and_folders_are_private_to_syncd(stateful: Any, tmp_path: Path) -> None:
    _one_recorded_run(stateful, tmp_path)
    state = tmp_path / "state"
    for path in [state / "runs", *(state / "runs").iterdir(), state / "missing.json"]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_4_a_symlink_planted_in_a_shared_state_dir_is_never_written_through(
        stateful: Any, tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg, _ = _one_recorded_run(stateful, tmp_path)
    state = tmp_path / "state"
    state.chmod(0o777)  # a shared directory: anyone may plant files in it
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (state / ".write-test").symlink_to(victim)
    stateful([person(i) for i in range(12)])
    for command in ("plan", "once"):
        done = run_cli(command, "--config", str(cfg))
        assert done.returncode == 0, done.stderr
        warned = _events(done.stderr, "security.state_dir_unsafe")
        assert len(warned) == 1 and "writable by every user" in warned[0]["problem"]
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert len(standin.users()) == 12


@pytest.mark.parametrize("planted", ["runs", "missing.json"])
def test_4_a_symlink_inside_state_dir_is_refused(stateful: Any, tmp_path: Path,
                                                 standin: NebulyStandIn, planted: str) -> None:
    cfg, _ = _one_recorded_run(stateful, tmp_path)
    state = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    original = state / planted
    original.rename(elsewhere / planted)
    original.symlink_to(elsewhere / planted)
    before = sorted(p.name for p in (elsewhere / planted).parent.rglob("*"))
    stateful([person(i) for i in range(12)])
    done = run_cli("once", "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stderr
    assert f"{original} is a symbolic link" in done.stderr
    assert len(standin.users()) == 10  # nothing was written
    assert sorted(p.name for p in (elsewhere / planted).parent.rglob("*")) == before


@pytest.mark.parametrize("command", ["rollback", "approve"])
def test_4_a_state_dir_writable_by_others_is_refused_for_approve_and_rollback(
        stateful: Any, tmp_path: Path, standin: NebulyStandIn, command: str) -> None:
    rows = [person(i) for i in range(20)]
    cfg = stateful(rows)
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    stateful(rows[5:])
    assert run_cli("once", "--config", str(cfg)).returncode == ExitCode.GUARD_TRIPPED
    state = tmp_path / "state"
    item = next((state / ("runs" if command == "rollback" else "plans")).glob("*.json")).stem
    state.chmod(0o777)
    users = roster(standin)
    done = run_cli(command, item, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR
    assert f"state_dir {state} is writable by every user" in done.stderr
    assert "refusing to act on files another user may have planted" in done.stderr
    assert roster(standin) == users
    state.chmod(0o700)
    assert run_cli(command, item, "--config", str(cfg)).returncode == 0


def _stat(mode: int, uid: int, gid: int) -> os.stat_result:
    """A directory's stat as another machine would report it (any owner, any group)."""
    return os.stat_result((stat.S_IFDIR | mode, 1, 1, 2, uid, gid, 4096, 0, 0, 0))


def test_4_ownership_and_group_rules() -> None:
    from syncd.run.statefs import unsafe_reason

    here, me, mine = Path("/var/lib/syncd"), 1000, 1000
    assert unsafe_reason(here, _stat(0o700, me, mine), me, mine) is None
    # Root-owned and writable only by syncd's own group: a Kubernetes fsGroup volume.
    assert unsafe_reason(here, _stat(0o2775, 0, mine), me, mine) is None
    assert unsafe_reason(here, _stat(0o700, 4242, mine), me, mine) == (
        "/var/lib/syncd is owned by uid 4242, not by the user syncd runs as (uid 1000)")
    assert unsafe_reason(here, _stat(0o770, me, 100), me, mine) == (
        "/var/lib/syncd is writable by group 100, which syncd does not run as (mode 0770)")
    assert unsafe_reason(here, _stat(0o1777, me, mine), me, mine) == (
        "/var/lib/syncd is writable by every user (mode 1777)")


def _forge(path: Path, change: dict[str, Any], **doc: Any) -> None:
    path.write_text(json.dumps({"run_id": path.stem, "kind": "sync", "rollback_of": None,
                                "recorded_at": "2026-11-22T10:00:00+00:00",
                                "changes": [change], **doc}), encoding="utf-8")


ANN = {"end_user": "user00001@example.com", "tags": {"department": "Sales", "region": "FR"},
       "active_from": "2026-01-01", "active_to": None}


@pytest.mark.parametrize(("change", "doc", "problem"), [
    pytest.param({"action": "update", "before": None, "after": ANN}, {},
                 "an update needs 'before' and 'after'", id="update-without-before"),
    pytest.param({"action": "explode", "before": ANN, "after": ANN}, {},
                 "unknown action 'explode'", id="unknown-action"),
    pytest.param({"action": "update", "before": {**ANN, "end_user": "someone@else.com"},
                  "after": ANN}, {}, "'before' and 'after' are different users",
                 id="two-users"),
    pytest.param({"action": "insert", "before": None, "after": {**ANN, "end_user": " "}}, {},
                 "an 'end_user' is empty", id="empty-id"),
    pytest.param({"action": "insert", "before": None, "after": ANN},
                 {"run_id": "20261122T000000Z-000000"}, "names run 20261122T000000Z-000000",
                 id="another-run-id"),
])
def test_4_a_malformed_run_record_is_refused_before_rollback_acts(
        stateful: Any, tmp_path: Path, standin: NebulyStandIn, change: dict[str, Any],
        doc: dict[str, Any], problem: str) -> None:
    cfg, run_id = _one_recorded_run(stateful, tmp_path)
    record = tmp_path / "state" / "runs" / f"{run_id}.json"
    _forge(record, change, **doc)
    users = roster(standin)
    done = run_cli("rollback", run_id, "--config", str(cfg), "--force")
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stdout
    assert f"{record} is unreadable" in done.stderr and problem in done.stderr
    assert "\u202e" not in done.stderr
    assert roster(standin) == users


def test_4_a_run_record_that_is_a_symlink_is_not_read(stateful: Any, tmp_path: Path,
                                                      standin: NebulyStandIn) -> None:
    cfg, run_id = _one_recorded_run(stateful, tmp_path)
    record = tmp_path / "state" / "runs" / f"{run_id}.json"
    outside = tmp_path / "forged.json"
    _forge(outside, {"action": "insert", "before": None, "after": ANN}, run_id=run_id)
    record.unlink()
    record.symlink_to(outside)
    users = roster(standin)
    done = run_cli("rollback", run_id, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR
    assert f"{record} is a symbolic link" in done.stderr
    assert roster(standin) == users
    assert os.path.islink(record)


@pytest.mark.parametrize("command", [["plans"], ["plans", "--json"], ["runs"], ["runs", "--json"],
                                     ["status"], ["status", "--json"],
                                     ["explain", "user00001@example.com"]])
def test_4_read_only_commands_warn_about_a_state_dir_writable_by_others(
        stateful: Any, tmp_path: Path, command: list[str]) -> None:
    """They list what is there (it may be planted: say so), as `plan` and `once` warn;
    approve and rollback, which act on it, refuse (above)."""
    cfg, run_id = _one_recorded_run(stateful, tmp_path)
    state = tmp_path / "state"
    state.chmod(0o777)
    done = run_cli(*command, "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    warned = _events(done.stderr, "security.state_dir_unsafe")
    assert len(warned) == 1, done.stderr
    assert warned[0]["problem"] == f"{state} is writable by every user (mode 0777)"
    assert "approve and rollback refuse" in warned[0]["consequence"]
    if command[:2] == ["runs", "--json"]:  # stdout stays clean JSON for scripts
        assert [row["run_id"] for row in json.loads(done.stdout)] == [run_id]
    state.chmod(0o700)
    quiet = run_cli(*command, "--config", str(cfg))
    assert quiet.returncode == 0 and not _events(quiet.stderr, "security.state_dir_unsafe")
