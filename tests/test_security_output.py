"""Security finding 7 of issue 17: terminal escape and bidi injection. Values from
Nebuly and from the directory reached the admin's terminal raw, and C1 and bidi
controls went through the source sanitiser to Nebuly. Each test failed before its fix,
except those that hold the order of masking and escaping (`safe_text`, one walk per
event), written when those steps became one: they fail if either step is skipped or
the order reversed."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd import log
from syncd.core.text import escape_controls, strip_controls
from tests.conftest import config_text, person, roster, run_cli, write_csv

OSC_TITLE = "\x1b]0;you have been pwned\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b2J"
RLO = "\u202e"
HOSTILE = (OSC_TITLE, CLEAR, C1_CSI, RLO)
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _assert_inert(text: str, where: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached {where} raw"


def test_7_escape_and_strip_rules() -> None:
    assert escape_controls(f"a{OSC_TITLE}b") == "a\\x1b]0;you have been pwned\\x07b"
    assert escape_controls(f"{C1_CSI}{RLO}moc.live@nna") == "\\x9b2J\\u202emoc.live@nna"
    assert escape_controls("Zürich, 東京, تهران") == "Zürich, 東京, تهران"
    assert strip_controls(f"Sa{RLO}les\x9bEMEA\x00") == "Sales EMEA"


def test_7_a_message_for_stderr_is_masked_then_escaped() -> None:
    """A secret with a newline in it (a PEM key's) is still found: escaped first, it
    would read `\\x0a` and pass the redactor."""
    token = secrets.token_hex(8)
    log.register_secret(f"pem\nkey-{token}")
    assert (log.safe_text(f"bad key pem\nkey-{token}{OSC_TITLE}")
            == f"bad key {log.MASK}\\x1b]0;you have been pwned\\x07")


@pytest.mark.parametrize("view", ["console", "json"])
def test_7_log_masks_then_escapes_values_nested_in_an_event(view: str) -> None:
    """Both steps reach a dict or list inside an event field, on both views, and the
    mask comes first: a secret with a tab in it, escaped first, would no longer match."""
    token = secrets.token_hex(8)
    secret = f"nested\tsecret-{token}"
    log.register_secret(secret)
    tag = f"Sales{OSC_TITLE}{C1_CSI}{RLO}"
    stream = io.StringIO()
    log.configure(view, "info", stream=stream, color="never")
    log.get_logger().warning("hostile.event", detail={
        "tags": [f"bind {secret} refused", tag], "inner": {"echo": (secret, CLEAR)}})
    text = stream.getvalue()
    assert token not in text, f"a nested secret reached the {view} log"
    _assert_inert(text, f"the {view} log")
    if view == "json":
        assert json.loads(text)["detail"] == {
            "tags": [f"bind {log.MASK} refused", tag], "inner": {"echo": [log.MASK, CLEAR]}}
    else:  # the console shows a nested value as the repr of its escaped text
        assert repr(f"bind {log.MASK} refused") in text
        assert repr(escape_controls(tag)) in text
        assert repr(escape_controls(CLEAR)) in text


@pytest.fixture
def hostile(tmp_path: Path, standin: NebulyStandIn) -> Any:
    """Nebuly holds users whose tags and ids carry terminal controls; the CSV changes
    one of them and drops the other (a blocked deactivation: cap 0)."""
    standin.seed([
        {"end_user": "user00001@example.com", "active_from": "2026-01-01", "active_to": None,
         "tags": {"department": f"Sales{OSC_TITLE}{CLEAR}", "region": f"FR{C1_CSI}{RLO}"}},
        {"end_user": f"evil{CLEAR}{RLO}@example.com", "active_from": "2026-01-01",
         "active_to": None, "tags": {"department": OSC_TITLE}},
    ])
    csv_path = write_csv(tmp_path / "roster.csv", [person(1, department="Legal"), person(2)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path, policy="  max_deactivations: 0")
                   + f"state_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    return cfg


def test_7_values_from_nebuly_are_escaped_in_plan_approve_rollback_and_listings(
        hostile: Path) -> None:
    cfg = str(hostile)
    plan = run_cli("plan", "--config", cfg)
    _assert_inert(plan.stdout + plan.stderr, "plan")
    assert "department: Sales\\x1b]0;you have been pwned\\x07\\x1b[2J -> Legal" in plan.stdout
    assert "x deactivate  evil\\x1b[2J\\u202e@example.com" in plan.stdout

    once = run_cli("once", "--config", cfg)
    assert once.returncode == 5
    plan_id = json.loads(run_cli("plans", "--config", cfg, "--json").stdout)[0]["plan_id"]
    approve = run_cli("approve", plan_id, "--config", cfg, "--dry-run")
    _assert_inert(approve.stdout + approve.stderr, "approve")
    assert "evil\\x1b[2J\\u202e@example.com" in approve.stdout

    run_id = json.loads(run_cli("runs", "--config", cfg, "--json").stdout)[0]["run_id"]
    rollback = run_cli("rollback", run_id, "--config", cfg, "--dry-run")
    _assert_inert(rollback.stdout + rollback.stderr, "rollback")
    assert "department: Legal -> Sales\\x1b]0;" in rollback.stdout
    for command in (["plans"], ["runs"], ["preview"], ["preview", "--format", "json"],
                    ["validate"]):
        done = run_cli(*command, "--config", cfg)
        _assert_inert(done.stdout + done.stderr, " ".join(command))
        if "json" in command:  # escaped, and still the same JSON
            assert json.loads(done.stdout)[0]["tags"]["department"] == "Legal"


def test_7_c1_and_bidi_controls_are_stripped_from_source_values_and_refused_in_ids(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    rows = [person(1, department=f"Sa{RLO}les{C1_CSI}", country=f"F{CLEAR}R"), person(2)]
    rows.append({**person(3), "email": f"moc.evil{RLO}@ann.example.com"})
    rows.append({**person(4), "email": f"user00004{C1_CSI}@example.com"})
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path) + "logging: {format: json}\n",
                   encoding="utf-8")
    preview = run_cli("preview", "--config", str(cfg), "--format", "json")
    _assert_inert(preview.stdout + preview.stderr, "preview")
    done = run_cli("once", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    held = roster(standin)
    assert sorted(held) == ["user00001@example.com", "user00002@example.com"]
    assert held["user00001@example.com"]["tags"] == {"department": "Sales 2J", "region": "F [2JR"}
    skipped = [json.loads(line) for line in done.stderr.splitlines()
               if '"record.skipped"' in line]
    assert [s["record"] for s in skipped] == ["roster.csv line 4", "roster.csv line 5"]
    assert all("contains control characters" in s["reason"] for s in skipped)


@pytest.mark.parametrize("command", ["plan", "once"])
def test_7_a_plan_file_is_inert_on_a_terminal_and_holds_every_value_exactly(
        hostile: Path, tmp_path: Path, command: str) -> None:
    """--plan-out is JSON for scripts and tickets, and admins also `cat` it. JSON escapes
    are lossless, so C1 and bidi characters are written as `\\u009b` / `\\u202e` (as C0
    always were): a script reads exactly the id Nebuly holds, a terminal shows the escape.
    Letters stay readable."""
    write_csv(tmp_path / "roster.csv", [person(1, department="Rechtsabteilung Zürich"),
                                        person(2)])
    plan_file = tmp_path / "plan.json"
    done = run_cli(command, "--config", str(hostile), "--plan-out", str(plan_file))
    assert done.returncode == 5, done.stderr  # the blocked deactivation
    text = plan_file.read_text(encoding="utf-8")
    _assert_inert(text, "--plan-out")
    assert "\\u009b" in text and "\\u202e" in text and "Zürich" in text
    doc = json.loads(text)
    (update,) = doc["plan"]["update"]
    assert update["before"]["tags"] == {"department": f"Sales{OSC_TITLE}{CLEAR}",
                                        "region": f"FR{C1_CSI}{RLO}"}
    assert update["after"]["tags"]["department"] == "Rechtsabteilung Zürich"
    (leaving,) = doc["blocked"]["deactivate"]
    assert leaving["end_user"] == f"evil{CLEAR}{RLO}@example.com"
    assert leaving["before"]["tags"] == {"department": OSC_TITLE}


def test_7_a_large_plan_file_is_escaped_throughout_and_reads_back_exactly(
        tmp_path: Path) -> None:
    """The file is streamed in blocks of the encoder's pieces: every block, the last,
    partial one too, is escaped, and nothing is lost or repeated between them."""
    from syncd.core.text import escape_json_text
    from syncd.run.state import write_json_atomic

    doc = {"insert": [{"end_user": f"user{i}{RLO}@example.com",
                       "tags": {"department": f"{C1_CSI}{i}", "city": "Zürich"}}
                      for i in range(5001)]}
    path = tmp_path / "plan.json"
    write_json_atomic(path, doc, escape=escape_json_text)
    text = path.read_text(encoding="utf-8")
    _assert_inert(text, "a large --plan-out file")
    assert json.loads(text) == doc
