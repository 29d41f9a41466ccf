"""Readable output (issue 18, findings 7 and 10): `once` at a terminal says what it
did, long plans repeat their summary at the end, grace is a section, a pipe closed
early ends quietly, and `runs` says when and what."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import run_once
from tests.conftest import config_text, person, run_cli, write_csv
from tests.terminal import run_on_terminals

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 22)


def _config(tmp_path: Path, url: str, rows: list[dict[str, str]], policy: str = "") -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path, policy=policy)
                   + f"state_dir: {tmp_path / 'state'}\n")
    return cfg


def test_once_at_a_terminal_prints_the_summary(tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, standin.url, [person(i) for i in range(3)])
    done = run_on_terminals("once", "--config", str(cfg), stderr_tty=False)
    text = done.stdout
    assert done.code == 0
    assert "Applied: 3 insert, 0 update" in text
    assert "+ insert      user00001@example.com" in text


def test_a_long_plan_repeats_its_summary_at_the_end(tmp_path: Path,
                                                    standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, standin.url, [person(i) for i in range(40)])
    lines = run_cli("plan", "--config", str(cfg)).stdout.splitlines()
    assert lines[0].startswith("Would apply: 40 insert")
    assert lines[-1] == lines[0]


def test_people_in_grace_are_a_section_of_the_plan(tmp_path: Path,
                                                   standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(20)]
    cfg = _config(tmp_path, standin.url, rows, policy="  grace_runs: 3")
    run_once(load_config(cfg), today=TODAY)
    cfg = _config(tmp_path, standin.url, rows[2:], policy="  grace_runs: 3")
    run_once(load_config(cfg), today=TODAY)
    out = run_cli("plan", "--config", str(cfg)).stdout
    assert "Waiting out the departure grace period (2):" in out
    assert "  . grace       user00001@example.com" in out


def test_plan_into_a_pipe_closed_early_ends_quietly(tmp_path: Path,
                                                    standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, standin.url, [person(i) for i in range(3000)])
    proc = subprocess.Popen([sys.executable, "-m", "syncd.app.cli", "plan", "--config",
                             str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert "BrokenPipeError" not in stderr and "internal error" not in stderr, stderr
    assert proc.returncode == 141


def test_runs_shows_when_and_what(tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(i) for i in range(10)]
    cfg = _config(tmp_path, standin.url, rows)
    first = run_once(load_config(cfg), today=TODAY)
    cfg = _config(tmp_path, standin.url, [person(0, "Ops"), *rows[1:]])
    second = run_once(load_config(cfg), today=TODAY)
    listed = {r["run_id"]: r for r in
              json.loads(run_cli("runs", "--config", str(cfg), "--json").stdout)}
    assert set(listed) == {first.run_id, second.run_id}
    assert listed[first.run_id]["changes"] == 10 and listed[first.run_id]["insert"] == 10
    assert listed[second.run_id]["update"] == 1 and listed[second.run_id]["kind"] == "sync"
    assert listed[second.run_id]["recorded_at"][:4] == str(date.today().year)
    text = run_cli("runs", "--config", str(cfg)).stdout
    assert "1 update" in text and "10 insert" in text
