"""The canary sweep of issue 17: every command and endpoint, run for real against the
stand-in with the API key given as `${VAR}`, prints, logs, serves and stores no secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from standins.nebuly.server import NebulyStandIn
from tests.conftest import CANARIES, CANARY_API_KEY, config_text, person, write_csv
from tests.test_daemon import DaemonProcess, spawn  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
KEY_VAR = "SYNCD_TEST_SWEEP_KEY"


def _assert_no_secret(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"a secret reached {where}"
    assert CANARY_API_KEY[:12] not in text, f"part of the key reached {where}"


@pytest.fixture
def key_in_environment() -> Iterator[None]:
    """The key in the environment, as `${VAR}` configs take it (for the daemon too)."""
    os.environ[KEY_VAR] = CANARY_API_KEY
    try:
        yield
    finally:
        del os.environ[KEY_VAR]


def _syncd(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    _assert_no_secret(done.stdout + done.stderr, f"`syncd {' '.join(args[:1])}`")
    assert "Traceback" not in done.stderr
    return done


def test_canary_sweep_over_every_command_endpoint_and_state_file(
        tmp_path: Path, standin: NebulyStandIn, key_in_environment: None,
        spawn: Callable[[Path], DaemonProcess]) -> None:  # noqa: F811
    standin.seed([{"end_user": "gone@example.com", "tags": {"department": "Sales"},
                   "active_from": "2026-01-01", "active_to": None}])
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(10)])
    cfg = tmp_path / "syncd.yaml"
    text = config_text(standin.url, csv_path, policy="  max_deactivations: 0")
    cfg.write_text(text.replace(CANARY_API_KEY, f"${{{KEY_VAR}}}") + f"""
state_dir: {tmp_path / 'state'}
logging: {{format: json, level: debug}}
schedule: {{interval: 1h}}
health: {{host: 127.0.0.1, port: 0}}
""", encoding="utf-8")
    assert CANARY_API_KEY not in cfg.read_text(encoding="utf-8")
    c = ("--config", str(cfg))
    assert _syncd("validate", *c).returncode == 0
    assert _syncd("preview", *c).returncode == 0
    assert _syncd("preview", "--format", "json", *c).returncode == 0
    assert _syncd("plan", "--plan-out", str(tmp_path / "plan.json"), *c).returncode == 5
    assert _syncd("once", "--plan-out", str(tmp_path / "once.json"), *c).returncode == 5
    plans = json.loads(_syncd("plans", "--json", *c).stdout)
    assert _syncd("plans", *c).returncode == 0
    runs = json.loads(_syncd("runs", "--json", *c).stdout)
    assert _syncd("runs", *c).returncode == 0
    assert _syncd("approve", plans[0]["plan_id"], "--dry-run", *c).returncode == 0
    assert _syncd("approve", plans[0]["plan_id"], *c).returncode == 0
    assert _syncd("rollback", runs[0]["run_id"], "--dry-run", *c).returncode == 0
    assert _syncd("rollback", runs[0]["run_id"], *c).returncode == 0
    assert _syncd("approve", "20990101T000000Z-abcdef", *c).returncode == 2

    daemon = spawn(cfg)
    daemon.wait_event("sync.finished")
    for path in ("/metrics", "/livez", "/readyz", "/nope"):
        response = daemon.get(path)
        _assert_no_secret(response.text, path)
        _assert_no_secret(json.dumps(dict(response.headers)), f"the headers of {path}")
    assert "syncd_runs_total" in daemon.get("/metrics").text
    assert daemon.terminate()[0] == 0
    _assert_no_secret(daemon.output, "the daemon's log")
    daemon.assert_clean_output()

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} >= {"runs", "approved", "state"}
    for path in files:
        _assert_no_secret(path.read_text(encoding="utf-8", errors="replace"), str(path))
