"""The operator commands with awkward state files, config paths and servers that echo secrets."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from syncd import log
from syncd.app.commands import NEEDS_STATE_DIR
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode
from syncd.run.state import StateDir, StateError
from syncd.sources.base import SourceError
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource
from tests.conftest import CANARY_API_KEY, config_text, person, run_cli, write_csv

RUN_ID = "20261122T101500Z-3fa2c1"
PLAN_ID = "20261122T101500Z-9bc4d2"
OTHER_ID = "20261123T101500Z-0a0b0c"
UNUSED_URL = "http://127.0.0.1:9"  # never contacted: these commands fail before any call

ANN = {"end_user": "ann@example.com", "tags": {"department": "Sales"},
       "active_from": "2026-01-01", "active_to": None}
ANN_MOVED = {**ANN, "tags": {"department": "Ops"}}
ANN_GONE = {**ANN, "active_to": "2026-11-22"}


def _run_doc() -> dict[str, Any]:
    return {"run_id": RUN_ID, "kind": "sync", "rollback_of": None,
            "recorded_at": "2026-11-22T10:15:00+00:00",
            "changes": [{"action": "update", "before": ANN, "after": ANN_MOVED}]}


def _plan_doc(expires_at: str = "2999-01-01T00:00:00+00:00") -> dict[str, Any]:
    return {"plan_id": PLAN_ID, "reason": "over max_deactivations",
            "created_at": "2026-11-22T10:15:00+00:00", "expires_at": expires_at,
            "changes": [{"action": "deactivate", "before": ANN, "after": ANN_GONE}]}


def _write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def _id_and_count(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields `runs --json` has always had (it has more now: when, kind, counts)."""
    return [{"run_id": r["run_id"], "changes": r["changes"]} for r in rows]


def _config(tmp_path: Path, url: str = UNUSED_URL, *, state: str | None = "state",
            replace: tuple[str, str] | None = None) -> Path:
    """A config with one CSV source (a person who is not ann) and `state_dir: state`."""
    csv_path = write_csv(tmp_path / "roster.csv", [person(1)])
    text = config_text(url, csv_path, nebuly="  max_retries: 0")
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    if state is not None:
        text += f"state_dir: {state}\n"
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


# --- 1. state_dir is relative to the config file --------------------------------------


def test_relative_state_dir_is_resolved_against_the_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    cfg = _config(conf_dir, state="st")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(cfg)
    assert config.state_dir == conf_dir / "st"

    _write(conf_dir / "st" / "runs" / f"{RUN_ID}.json", _run_doc())
    done = run_cli("runs", "--config", str(cfg), "--json")
    assert done.returncode == 0, done.stderr
    assert _id_and_count(json.loads(done.stdout)) == [{"run_id": RUN_ID, "changes": 1}]

    absolute = tmp_path / "abs"
    assert load_config(_config(conf_dir, state=str(absolute))).state_dir == absolute


# --- 2. a server that echoes the key back never gets it onto stdout -----------------


class _EchoingNebuly(BaseHTTPRequestHandler):
    """Answers GET with `roster`; writes (and GET, when `fail_reads`) with HTTP 400 whose
    detail quotes the request's Authorization header, as a careless proxy might."""

    # Each test gets a subclass of its own (the `echoing` fixture).
    url: ClassVar[str] = ""
    roster: ClassVar[list[dict[str, Any]]] = []
    fail_reads: ClassVar[bool] = False
    writes: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.fail_reads:
            self._echo()
        else:
            self._reply(200, {"users": self.roster})

    def do_PUT(self) -> None:
        self._write()

    def do_POST(self) -> None:
        self._write()

    def do_DELETE(self) -> None:
        self._write()

    def _write(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).writes.append(self.command)
        self._echo()

    def _echo(self) -> None:
        self._reply(400, {"detail": f"bad header {self.headers.get('Authorization')}"})

    def _reply(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echoing() -> Iterator[type[_EchoingNebuly]]:
    handler: type[_EchoingNebuly] = type("Echoing", (_EchoingNebuly,), {
        "roster": [], "fail_reads": False, "writes": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_rollback_output_masks_a_key_echoed_in_a_rejection(
        tmp_path: Path, echoing: Any) -> None:
    echoing.roster = [ANN_MOVED]
    cfg = _config(tmp_path, echoing.url)
    _write(tmp_path / "state" / "runs" / f"{RUN_ID}.json", _run_doc())
    done = run_cli("rollback", RUN_ID, "--config", str(cfg))  # asserts no canary anywhere
    assert echoing.writes == ["POST"]  # the update was sent and refused
    assert done.returncode == ExitCode.PARTIAL_FAILURE, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if "! failed" in line]
    assert len(failed) == 1 and "ann@example.com" in failed[0]
    assert f"bad header Bearer {log.MASK}" in failed[0]


def test_approve_output_masks_a_key_echoed_in_a_rejection(
        tmp_path: Path, echoing: Any) -> None:
    echoing.roster = [ANN]
    cfg = _config(tmp_path, echoing.url)
    _write(tmp_path / "state" / "plans" / f"{PLAN_ID}.json", _plan_doc())
    done = run_cli("approve", PLAN_ID, "--config", str(cfg))
    assert echoing.writes == ["POST"]
    assert done.returncode == ExitCode.PARTIAL_FAILURE, done.stdout + done.stderr
    assert f"ann@example.com: Nebuly answered HTTP 400 to update: bad header Bearer {log.MASK}" \
        in done.stdout
    assert (tmp_path / "state" / "plans" / f"{PLAN_ID}.json").exists()  # not closed


def test_a_refused_read_masks_the_echoed_key_in_the_message(
        tmp_path: Path, echoing: Any) -> None:
    echoing.fail_reads = True
    cfg = _config(tmp_path, echoing.url)
    _write(tmp_path / "state" / "runs" / f"{RUN_ID}.json", _run_doc())
    done = run_cli("rollback", RUN_ID, "--config", str(cfg))
    assert done.returncode == ExitCode.NEBULY_FAILED
    first = done.stdout.splitlines()[0]
    assert f"bad header Bearer {log.MASK}" in first and "nothing was applied" in first
    assert echoing.writes == []


# --- 3. the LDAP bind password is masked once read ------------------------------------


def test_ldap_bind_password_is_registered_for_masking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = f"ldap-bind-{secrets.token_hex(8)}"
    (tmp_path / "bind.pw").write_text(password + "\n", encoding="utf-8")
    config = LdapSourceConfig.model_validate({
        "name": "corp", "type": "ldap", "url": "ldaps://127.0.0.1:1",
        "bind_dn": "cn=svc,dc=example,dc=com", "bind_password_file": str(tmp_path / "bind.pw"),
        "base_dn": "dc=example,dc=com", "end_user": "{uid}"})
    source = LdapSource(config)

    def refuse(given: str | None) -> Any:
        assert given == password
        raise SourceError("corp", "no server (test)")

    monkeypatch.setattr(source, "_connect", refuse)
    assert log.redact_text(f"bind {password}") == f"bind {password}"
    with pytest.raises(SourceError):
        source.read()
    assert log.redact_text(f"bind {password}") == f"bind {log.MASK}"


# --- 4. bad state files, bad state_dir, bad input: exit 2 with a message ----------------


BAD_PLANS: dict[str, Any] = {
    "a list": [],
    "an empty object": {},
    "not JSON": "{not json",
    "changes not a list": {**_plan_doc(), "changes": "deactivate ann"},
    "change without before": {**_plan_doc(), "changes": [
        {"action": "deactivate", "before": None, "after": ANN_GONE}]},
    "tags not a mapping": {**_plan_doc(), "changes": [
        {"action": "deactivate", "before": {**ANN, "tags": ["Sales"]}, "after": ANN_GONE}]},
    "expires_at not a date": _plan_doc(expires_at="next tuesday"),
    "expires_at a number": {**_plan_doc(), "expires_at": 12},
}


@pytest.mark.parametrize("content", BAD_PLANS.values(), ids=BAD_PLANS.keys())
def test_approve_with_a_malformed_plan_file_exits_2_naming_it(tmp_path: Path,
                                                                content: Any) -> None:
    cfg = _config(tmp_path)
    path = _write(tmp_path / "state" / "plans" / f"{PLAN_ID}.json", content)
    done = run_cli("approve", PLAN_ID, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stderr
    assert "internal error" not in done.stderr
    assert str(path) in done.stderr and "fix or delete it" in done.stderr


BAD_RUNS: dict[str, Any] = {
    "an empty object": {},
    "a list": [1, 2],
    "change not an object": {**_run_doc(), "changes": ["update"]},
    "change with neither side": {**_run_doc(), "changes": [
        {"action": "update", "before": None, "after": None}]},
    "end_user a number": {**_run_doc(), "changes": [
        {"action": "update", "before": {**ANN, "end_user": 7}, "after": ANN_MOVED}]},
    "bad date": {**_run_doc(), "changes": [
        {"action": "update", "before": {**ANN, "active_from": "yesterday"},
         "after": ANN_MOVED}]},
}


@pytest.mark.parametrize("content", BAD_RUNS.values(), ids=BAD_RUNS.keys())
def test_rollback_with_a_malformed_run_file_exits_2_naming_it(tmp_path: Path,
                                                              content: Any) -> None:
    cfg = _config(tmp_path)
    path = _write(tmp_path / "state" / "runs" / f"{RUN_ID}.json", content)
    done = run_cli("rollback", RUN_ID, "--config", str(cfg), "--dry-run")
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stderr
    assert "internal error" not in done.stderr
    assert str(path) in done.stderr and "fix or delete it" in done.stderr


def test_a_plan_written_without_a_timezone_is_read_as_utc(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    _write(state.root / "plans" / f"{PLAN_ID}.json", _plan_doc("2999-01-01T00:00:00"))
    plan = state.load_plan(PLAN_ID)
    assert plan.expires_at.tzinfo is UTC and plan.created_at.tzinfo is not None
    assert plan.expires_at.isoformat() == "2999-01-01T00:00:00+00:00"

    cfg = _config(tmp_path)
    listed = run_cli("plans", "--config", str(cfg), "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["expires_at"] == "2999-01-01T00:00:00+00:00" and row["expired"] is False


def test_an_expired_plan_without_a_timezone_is_refused_as_expired(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    _write(tmp_path / "state" / "plans" / f"{PLAN_ID}.json", _plan_doc("2000-01-01T00:00:00"))
    done = run_cli("approve", PLAN_ID, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR
    assert f"plan {PLAN_ID} expired at 2000-01-01 00:00 UTC" in done.stdout


def test_runs_lists_the_readable_runs_and_warns_about_the_others(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    _write(tmp_path / "state" / "runs" / f"{RUN_ID}.json", _run_doc())
    bad = _write(tmp_path / "state" / "runs" / f"{OTHER_ID}.json", {})
    done = run_cli("runs", "--config", str(cfg), "--json")
    assert done.returncode == 0, done.stderr
    assert _id_and_count(json.loads(done.stdout)) == [{"run_id": RUN_ID, "changes": 1}]
    [warning] = done.stderr.splitlines()
    assert warning.startswith("syncd: warning: ") and str(bad) in warning
    assert "missing key 'changes'" in warning


def test_plans_lists_the_readable_plans_and_warns_about_the_others(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    _write(tmp_path / "state" / "plans" / f"{PLAN_ID}.json", _plan_doc())
    bad = _write(tmp_path / "state" / "plans" / f"{OTHER_ID}.json", [])
    done = run_cli("plans", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert PLAN_ID in done.stdout and OTHER_ID not in done.stdout
    [warning] = done.stderr.splitlines()
    assert warning.startswith("syncd: warning: ") and str(bad) in warning


def test_list_plans_reports_unreadable_files_in_problems(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    _write(state.root / "plans" / f"{PLAN_ID}.json", _plan_doc())
    _write(state.root / "plans" / f"{OTHER_ID}.json", "{")
    problems: list[str] = []
    assert [p.plan_id for p in state.list_plans(problems)] == [PLAN_ID]
    assert len(problems) == 1 and f"{OTHER_ID}.json is unreadable" in problems[0]


@pytest.mark.parametrize("command", ["runs", "plans"])
def test_a_state_dir_that_is_a_file_exits_2(tmp_path: Path, command: str) -> None:
    cfg = _config(tmp_path)
    (tmp_path / "state").write_text("not a directory\n", encoding="utf-8")
    done = run_cli(command, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stdout + done.stderr
    assert f"state_dir {tmp_path / 'state'} is not a directory" in done.stderr


def test_a_runs_entry_that_is_a_file_exits_2(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    _write(tmp_path / "state" / "runs", "oops")
    done = run_cli("runs", "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR
    assert f"{tmp_path / 'state' / 'runs'} is not a directory" in done.stderr


def test_load_missing_with_a_wrong_shape_is_a_state_error(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    _write(tmp_path / "missing.json", {"missing": ["ann@example.com"]})
    with pytest.raises(StateError, match=r"missing\.json is unreadable .*; fix or delete it"):
        state.load_missing()


def test_runs_and_rollback_name_the_missing_state_dir_the_same_way(tmp_path: Path) -> None:
    cfg = _config(tmp_path, state=None)
    for args in (["runs"], ["plans"], ["rollback", RUN_ID], ["approve", PLAN_ID]):
        done = run_cli(*args, "--config", str(cfg))
        assert done.returncode == ExitCode.CONFIG_ERROR, args
        assert done.stderr == f"syncd: {NEEDS_STATE_DIR}\n", args


def test_an_unreadable_api_key_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, replace=(f"api_key: {CANARY_API_KEY}", "api_key_file: absent.key"))
    _write(tmp_path / "state" / "runs" / f"{RUN_ID}.json", _run_doc())
    done = run_cli("rollback", RUN_ID, "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stderr
    assert "internal error" not in done.stderr
    assert "api_key_file: cannot read the file: No such file or directory" in done.stderr
    # Not the path: it could be the key itself, pasted into the wrong field.
    assert "absent.key" not in done.stderr


def test_preview_reports_a_broken_template_and_exits_2(tmp_path: Path) -> None:
    cfg = _config(tmp_path, replace=('department: "{department}"',
                                     'department: "{department"'))
    done = run_cli("preview", "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stdout + done.stderr
    assert "internal error" not in done.stderr
    assert f"syncd: {cfg} is not a usable config:" in done.stderr
    assert "  sources[0].tags.department: " in done.stderr
    assert done.stdout == ""
