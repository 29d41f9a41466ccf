"""On a terminal (issues 16 and 18): a live progress line while the sources are read,
on stderr only and only in the console log; colour only where asked for or on a
terminal, never from the data, and piped output unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.sources.csv.source import PROGRESS_ROWS
from tests.conftest import config_text, person, write_csv
from tests.terminal import run_on_terminals

FAST = {"SYNCD_LIVE_EVERY": "0"}  # an update per chunk: a short read shows the line


def _config(tmp_path: Path, url: str, rows: int, extra: str = "") -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(rows)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path) + extra)
    return cfg


@pytest.mark.parametrize("command", [("plan",), ("preview", "--limit", "1"), ("once",)])
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
