"""Watching syncd (issue 18, finding 6): an observe-only daemon, --log-level on every
command, and retries that say which attempt, how long, why and against which host."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from syncd.run.state import StateDir
from tests.conftest import CANARY_API_KEY, config_text, person, run_cli, write_csv
from tests.test_daemon import DaemonProcess, daemon_config, spawn  # noqa: F401 (a fixture)

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def test_an_unreachable_nebuly_logs_each_retry_and_names_host_and_cause(
        tmp_path: Path, _logs_without_secrets: list[dict[str, Any]]) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(1)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(UNREACHABLE, csv_path, nebuly="  max_retries: 2"))
    waits: list[float] = []
    report = run_once(load_config(cfg), sleep=waits.append)
    assert report.exit_code == ExitCode.NEBULY_FAILED
    retries = [e for e in _logs_without_secrets if e["event"] == "nebuly.retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert [e["wait_s"] for e in retries] == [round(w, 3) for w in waits]
    assert all(e["host"] == "127.0.0.1:9" and "refused" in e["cause"].lower()
               for e in retries)
    assert report.error is not None
    assert "127.0.0.1:9" in report.error and "refused" in report.error.lower()


def test_log_level_on_the_command_line_wins_over_the_config(tmp_path: Path,
                                                            standin: NebulyStandIn) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(1)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path) + "logging: {format: json}\n")

    def events(*extra: str) -> list[str]:
        done = run_cli("plan", "--config", str(cfg), *extra)
        return [msgspec.json.decode(x)["event"] for x in done.stderr.splitlines()
                if x.startswith("{")]

    assert "sync.started" in events()
    assert events("--log-level", "error") == []
    for command in ("once", "validate", "plans", "status", "preview", "schema"):
        done = run_cli(command, "--help")
        assert "--log-level" in done.stdout, command


def test_run_dry_run_observes_on_schedule_and_never_writes(
        tmp_path: Path, standin: NebulyStandIn,
        spawn: Callable[..., DaemonProcess]) -> None:  # noqa: F811 (the fixture imported above)
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(5)])
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, interval="1s")
    cfg.write_text(cfg.read_text() + f"state_dir: {tmp_path / 'state'}\n")
    daemon = spawn(cfg, "--dry-run")
    try:
        finished = daemon.wait_event("sync.finished", count=2, timeout=30)
        metrics = daemon.get("/metrics").text
    finally:
        code, _ = daemon.terminate()
    assert code == 0
    assert all(e["dry_run"] and e["status"] == "dry_run" and e["inserted"] == 5
               for e in finished)
    assert 'syncd_run_users{action="inserted"} 5.0' in metrics
    assert standin.users() == [] and not [c for c in standin.calls if c.method != "GET"]
    assert daemon.events("daemon.started")[0]["dry_run"] is True
    assert StateDir(tmp_path / "state").list_runs() == []


def test_a_long_apply_reports_its_progress(standin: NebulyStandIn,
                                           _logs_without_secrets: list[dict[str, Any]]) -> None:
    from syncd.core.model import NebulyUser
    from syncd.nebuly.client import NebulyClient, make_http_client

    ticks = iter(range(0, 10_000, 4))  # each look at the clock: 4 s later
    users = [NebulyUser(f"user{i:05d}@example.com", {"department": "Sales"}, date(2026, 1, 1))
             for i in range(50)]
    with make_http_client(standin.url, CANARY_API_KEY, 10.0) as http:
        client = NebulyClient(http, batch_size=10, clock=lambda: float(next(ticks)))
        outcome = client.insert(users)
    assert len(outcome.applied) == 50
    progress = [e for e in _logs_without_secrets if e["event"] == "apply.progress"]
    # Clock 0 at start, 4, 8, 12 (>= 10: logged), 16, 20, 24 (logged): every ~10 s.
    assert [(e["done"], e["total"]) for e in progress] == [(30, 50)]
