"""Secrets never leave: the canary API key, given inline, through an environment
variable or in a secret file, appears in no stdout, stderr or plan file of
`syncd once`, `syncd plan --plan-out` and `syncd validate`, whether Nebuly accepts
the key or refuses it (401)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.nebuly.server import NebulyStandIn
from tests.conftest import CANARIES, CANARY_API_KEY, person, write_csv

REPO = Path(__file__).resolve().parents[1]
KEY_FORMS = {
    "inline": f"api_key: {CANARY_API_KEY}",
    "env-var": "api_key: ${SYNCD_TEST_NEBULY_KEY}",
    "secret-file": "api_key_file: nebuly-key",
}


@pytest.fixture(params=["accepts-the-key", "refuses-the-key"])
def nebuly(request: pytest.FixtureRequest) -> Iterator[tuple[NebulyStandIn, bool]]:
    accepts = request.param == "accepts-the-key"
    with NebulyStandIn(api_key=CANARY_API_KEY if accepts else "some-other-key") as server:
        server.seed([{"end_user": "gone@example.com", "tags": {"department": "Sales"},
                      "active_from": "2026-01-01", "active_to": None}])
        yield server, accepts


def _write_config(tmp_path: Path, url: str, key_form: str, extra: str = "") -> Path:
    write_csv(tmp_path / "roster.csv", [person(i) for i in range(12)])
    # The key in a file the way Kubernetes mounts it: with a trailing newline.
    (tmp_path / "nebuly-key").write_text(CANARY_API_KEY + "\n", encoding="utf-8")
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(f"""
nebuly:
  base_url: {url}
  {KEY_FORMS[key_form]}
  max_retries: 0
{extra}
sources:
  - name: hr
    type: csv
    path: roster.csv
    end_user: "{{email}}"
    tags: {{department: "{{department}}"}}
policy: {{max_deactivations: 100}}
logging: {{level: debug}}
""", encoding="utf-8")
    return cfg


def _run_all(cfg: Path, tmp_path: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "SYNCD_TEST_NEBULY_KEY": CANARY_API_KEY}
    commands = {
        "validate": ["validate"],
        "plan": ["plan", "--plan-out", str(tmp_path / "plan.json")],
        "once": ["once", "--plan-out", str(tmp_path / "once-plan.json")],
    }
    done = {}
    # validate and plan write nothing and may run side by side; once runs after them.
    for wave in (("validate", "plan"), ("once",)):
        procs = {name: subprocess.Popen([sys.executable, "-m", "syncd.app.cli", *commands[name],
                                         "--config", str(cfg)], cwd=REPO, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name in wave}
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=60)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done


def _assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"a secret reached {where}"
    # Nor a recognisable part of it (a key cut short inside a message).
    assert CANARY_API_KEY[:12] not in text, f"part of the API key reached {where}"


@pytest.mark.parametrize("key_form", list(KEY_FORMS))
def test_canary_key_never_printed_or_written(tmp_path: Path,
                                             nebuly: tuple[NebulyStandIn, bool],
                                             key_form: str) -> None:
    server, accepted = nebuly
    cfg = _write_config(tmp_path, server.url, key_form)
    done = _run_all(cfg, tmp_path)
    for name, result in done.items():
        _assert_no_canary(result.stdout + result.stderr, f"the output of {name}")
        assert "Traceback" not in result.stderr
    assert done["validate"].returncode == 0, done["validate"].stderr
    if accepted:
        assert (done["plan"].returncode, done["once"].returncode) == (0, 0)
        assert "+ insert      user00003@example.com" in done["plan"].stdout
        assert len(server.users()) == 13
        for plan_file in ("plan.json", "once-plan.json"):
            text = (tmp_path / plan_file).read_text(encoding="utf-8")
            _assert_no_canary(text, plan_file)
            assert json.loads(text)["plan"]["counts"]
    else:
        assert (done["plan"].returncode, done["once"].returncode) == (4, 4)
        assert "refused the API key" in done["once"].stderr
        assert {c.status for c in server.calls} == {401}
        assert len(server.users()) == 1
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("nebuly-key", "syncd.yaml"):
            _assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))


@pytest.mark.parametrize("broken", [
    pytest.param("  api_key_file: nebuly-key", id="key-and-key-file"),
    pytest.param("  timeout: soon", id="bad-field-next-to-the-key"),
    pytest.param("  colour: blue", id="unknown-key-next-to-the-key"),
])
def test_canary_key_not_echoed_by_config_errors(tmp_path: Path, broken: str) -> None:
    cfg = _write_config(tmp_path, "http://127.0.0.1:9", "inline", extra=broken)
    for name, result in _run_all(cfg, tmp_path).items():
        assert result.returncode == 2, (name, result.stderr)
        _assert_no_canary(result.stdout + result.stderr, f"the output of {name}")
