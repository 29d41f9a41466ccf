"""On a terminal (issues 16 and 18): a live progress line while the sources are read,
on stderr only and only in the console log; colour only where asked for or on a
terminal, never from the data, and piped output unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.sources.csv.source import PROGRESS_ROWS
from tests.conftest import config_text, person, run_cli, write_csv
from tests.terminal import run_on_terminals

FAST = {"SYNCD_LIVE_EVERY": "0"}  # an update per chunk: a short read shows the line


def _config(tmp_path: Path, url: str, rows: int, extra: str = "") -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(rows)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path) + extra)
    return cfg


@pytest.mark.parametrize("command", [("plan",), ("preview", "--limit", "1"), ("once",),
                                     ("explain", "user00001@example.com", "--offline")])
def test_a_read_shows_a_live_line_on_the_terminal_and_never_on_stdout(
        tmp_path: Path, standin: NebulyStandIn, command: tuple[str, ...]) -> None:
    cfg = _config(tmp_path, standin.url, 2 * PROGRESS_ROWS + 5)
    ran = run_on_terminals(*command, "--config", str(cfg), env=FAST)
    assert ran.code == 0, ran.stderr
    assert "\r\x1b[Kreading hr: 10,000 records, " in ran.stderr
    assert "\r\x1b[Kreading hr: 20,000 records, " in ran.stderr
    # Erased when the read ends: the next log line starts on a clean row.
    last = ran.stderr.rindex("reading hr:")
    assert "\r\x1b[K" in ran.stderr[last:].split("\n", 1)[0]
    assert "reading hr" not in ran.stdout and "\r" not in ran.stdout


def test_no_live_line_into_a_pipe(tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, standin.url, 2 * PROGRESS_ROWS,
                  extra="logging:\n  format: console\n")
    ran = run_on_terminals("plan", "--config", str(cfg), stderr_tty=False, env=FAST)
    assert ran.code == 0
    assert "source.read" in ran.stderr  # the console log is there...
    assert "reading hr" not in ran.stderr and "\r" not in ran.stderr  # ...the line is not


def test_no_live_line_in_the_json_log(tmp_path: Path, standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, standin.url, 2 * PROGRESS_ROWS,
                  extra="logging:\n  format: json\n")
    ran = run_on_terminals("plan", "--config", str(cfg), env=FAST)
    assert ran.code == 0
    assert '"event": "source.read"' in ran.stderr
    assert "reading hr" not in ran.stderr and "\r" not in ran.stderr


# -- colour -------------------------------------------------------------------------

GREEN, YELLOW, RED, HELD, BOLD = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1;33m", "\x1b[1m"
OURS = {GREEN, YELLOW, RED, HELD, BOLD, "\x1b[2m", "\x1b[0m"}


@pytest.fixture
def changed(tmp_path: Path, standin: NebulyStandIn) -> Path:
    """Nebuly holds 20 people; the CSV drops 3 (blocked: over the 10% cap), moves one
    to Ops and adds one."""
    standin.seed([{"end_user": f"user{i:05d}@example.com", "active_from": "2026-01-01",
                   "active_to": None, "tags": {"department": "Sales", "region": "FR"}}
                  for i in range(20)])
    rows = [person(i) for i in range(3, 20) if i != 5] + [person(5, "Ops"), person(99)]
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, write_csv(tmp_path / "roster.csv", rows)))
    return cfg


def test_color_always_colours_each_kind_of_line(changed: Path) -> None:
    plan = run_cli("plan", "--config", str(changed), "--color", "always").stdout
    lines = plan.splitlines()
    assert lines[0].startswith(f"{BOLD}Would apply: 1 insert, 1 update") and lines[0].endswith(
        "\x1b[0m")
    assert f"{GREEN}  + insert      user00099@example.com" in plan
    assert f"{YELLOW}  ~ update      user00005@example.com  department: Sales -> Ops" in plan
    assert f"{HELD}Blocked by a guard (3):" in plan
    assert f"{HELD}  x deactivate  user00000@example.com" in plan
    forced = run_cli("plan", "--config", str(changed), "--color", "always", "--force").stdout
    assert f"{RED}  ~ deactivate  user00000@example.com" in forced


def test_a_pipe_gets_no_colour_and_a_terminal_without_colour_gets_the_same_bytes(
        changed: Path) -> None:
    piped = run_cli("plan", "--config", str(changed))
    assert piped.returncode == 5 and "\x1b" not in piped.stdout  # 5: a guard blocked some
    never = run_on_terminals("plan", "--config", str(changed), "--color", "never",
                             stderr_tty=False)
    assert never.stdout == piped.stdout


def test_a_terminal_gets_colour_unless_no_color_is_set(changed: Path) -> None:
    cfg = str(changed)
    shown = run_on_terminals("plan", "--config", cfg)
    assert f"{GREEN}  + insert      user00099@example.com" in shown.stdout
    assert "\x1b[0m" in shown.stderr  # the console log is coloured too
    for env in ({"NO_COLOR": "1"}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}):
        plain = run_on_terminals("plan", "--config", cfg, env=env)
        assert "\x1b[" not in plain.stdout, env
        assert "\x1b[0m" not in plain.stderr, env
    # --color always is the admin's choice for this command: it overrides NO_COLOR.
    forced = run_on_terminals("plan", "--config", cfg, "--color", "always",
                              env={"NO_COLOR": "1"})
    assert GREEN in forced.stdout


def test_force_color_colours_a_pipe(changed: Path) -> None:
    ran = run_on_terminals("plan", "--config", str(changed), stdout_tty=False,
                           stderr_tty=False, env={"FORCE_COLOR": "1"})
    assert f"{GREEN}  + insert" in ran.stdout


def test_every_command_takes_color(changed: Path) -> None:
    for command in ("once", "plan", "validate", "run", "schema", "plans", "approve", "runs",
                    "rollback", "preview", "status", "explain"):
        done = run_cli(command, "--help")
        assert "--color {auto,always,never}" in done.stdout, command
    bad = run_cli("plan", "--config", str(changed), "--color", "sometimes")
    assert bad.returncode == 2 and "invalid choice: 'sometimes'" in bad.stderr


def test_colour_comes_only_from_syncd_values_stay_escaped(tmp_path: Path,
                                                          standin: NebulyStandIn) -> None:
    """A tag value that carries colour codes is shown escaped, even in colour."""
    standin.seed([{"end_user": "user00001@example.com", "active_from": "2026-01-01",
                   "active_to": None, "tags": {"department": f"Sales{RED}\x1b]0;x\x07",
                                               "region": "FR"}}])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, write_csv(tmp_path / "roster.csv",
                                                      [person(1, "Legal")])))
    for command in (("plan",), ("explain", "user00001@example.com")):
        out = run_cli(*command, "--config", str(cfg), "--color", "always").stdout
        assert "Sales\\x1b[31m\\x1b]0;x\\x07" in out, command
        codes = set(re.findall(r"\x1b\[[0-9;]*m", out))
        assert codes and codes <= OURS, command
        assert "\x1b]" not in out and "\x07" not in out, command


def test_status_and_explain_text_escape_values_from_nebuly(tmp_path: Path,
                                                           standin: NebulyStandIn) -> None:
    standin.seed([{"end_user": f"user{i:05d}@example.com", "active_from": "2026-01-01",
                   "active_to": None, "tags": {"department": f"Sales\x1b[2J{i}\u202e",
                                               "region": "FR"}} for i in range(3)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, write_csv(tmp_path / "roster.csv", [person(1)]),
                               policy="  max_deactivations: 0")
                   + f"state_dir: {tmp_path / 'state'}\n")
    assert run_cli("once", "--config", str(cfg)).returncode == 5  # a pending plan
    status = run_cli("status", "--config", str(cfg)).stdout
    assert "Sales\\x1b[2J0" in status and "\x1b" not in status
    explain = run_cli("explain", "user00000@example.com", "--config", str(cfg)).stdout
    assert "department=Sales\\x1b[2J0\\u202e" in explain and "\x1b" not in explain
    for command in (("status",), ("explain", "user00000@example.com")):
        out = run_cli(*command, "--config", str(cfg), "--json").stdout
        assert "\u202e" not in out and "\x1b" not in out, command
        assert "Sales\\u001b[2J0\\u202e" in out, command  # the same JSON value, escaped


def test_listings_status_preview_explain_and_approve_in_colour(tmp_path: Path,
                                                               changed: Path) -> None:
    cfg = str(changed)
    changed.write_text(changed.read_text() + f"state_dir: {tmp_path / 'state'}\n")
    assert run_cli("once", "--config", cfg).returncode == 5  # 3 deactivations held
    always = ("--config", cfg, "--color", "always")
    assert run_cli("runs", *always).stdout.startswith(f"{BOLD}run_id")
    plans = run_cli("plans", *always).stdout
    assert plans.startswith(f"{BOLD}plan_id")
    plan_id = plans.splitlines()[1].split()[0]
    assert "\x1b" not in plans.splitlines()[1]  # rows start with values: no rule applies
    status = run_cli("status", *always).stdout
    assert status.startswith(f"{BOLD}last run:\x1b[0m ")
    assert f"{BOLD}pending plans:\x1b[0m 1" in status
    preview = run_cli("preview", *always).stdout.splitlines()
    assert preview[0].startswith(f"{BOLD}end_user") and "\x1b" not in preview[1]
    explain = run_cli("explain", "user00000@example.com", *always).stdout
    assert explain.startswith(f"{BOLD}user00000@example.com\x1b[0m\n")
    assert f"{RED}  next run: deactivate (blocked by a guard" in explain
    approve = run_cli("approve", plan_id, "--dry-run", *always).stdout
    assert f"{RED}  ~ deactivate  user00000@example.com" in approve
