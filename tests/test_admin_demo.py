"""The README's walk through the demo (issue 18): preview -> plan -> once -> a blocked
plan -> approve -> rollback, on config/demo.yaml as shipped (only the stand-in's
address and the roster's place differ)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from syncd.run.report import ExitCode
from tests.conftest import CANARY_API_KEY, roster, run_cli

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_walkthrough_of_the_readme(tmp_path: Path, standin: NebulyStandIn) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    shutil.copy(REPO / "config/demo-roster.csv", conf / "demo-roster.csv")
    text = (REPO / "config/demo.yaml").read_text(encoding="utf-8")
    assert "state_dir: ../demo-state/syncd" in text
    text = text.replace("http://127.0.0.1:8931", standin.url).replace(
        "${NEBULY_API_KEY:-demo-key}", CANARY_API_KEY)
    cfg = conf / "demo.yaml"
    cfg.write_text(text, encoding="utf-8")
    c = ("--config", str(cfg))

    assert run_cli("validate", *c).returncode == 0
    assert run_cli("preview", *c, "--limit", "5").returncode == 0
    assert run_cli("plan", *c).stdout.startswith("Would apply: 50 insert")
    assert run_cli("once", *c).returncode == 0 and len(roster(standin)) == 50

    lines = (conf / "demo-roster.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (conf / "demo-roster.csv").write_text("".join([lines[0], *lines[11:]]), encoding="utf-8")
    assert run_cli("once", *c).returncode == ExitCode.GUARD_TRIPPED  # 10 of 50 leave: over 10%
    status = json.loads(run_cli("status", *c, "--json").stdout)
    (plan,) = status["pending_plans"]
    assert plan["deactivate"] == 10
    assert run_cli("approve", plan["plan_id"], *c).returncode == 0
    ended = [u for u, v in roster(standin).items() if v.get("active_to")]
    assert len(ended) == 10

    runs = json.loads(run_cli("runs", *c, "--json").stdout)
    approval = next(r for r in runs if r["kind"] == "approve")
    assert run_cli("rollback", approval["run_id"], *c).returncode == 0
    assert not any(v.get("active_to") for v in roster(standin).values())
    assert (tmp_path / "demo-state/syncd/runs").is_dir()
