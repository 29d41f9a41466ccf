"""Whole runs with an Entra source (Graph stand-in) and a CSV source into the Nebuly stand-in."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import SyncdConfig, load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import CANARIES, CANARY_CLIENT_SECRET, config_text, person, write_csv
from tests.conftest_entra import (
    SALES,
    Entra,
    entra_server,
    graph,
    is_disabled,
    is_guest,
    source_yaml,
)

__all__ = ["entra_server", "graph"]  # fixtures used by name

TODAY = date(2026, 11, 22)
SALES_IDS = {f"user{i}@contoso.example" for i in range(140, 200)
             if not is_disabled(i) and not is_guest(i)}


def entra_yaml(entra: Entra, secret_file: Path) -> str:
    return source_yaml(entra.standin, secret_file, "entra", f"""    groups: ["{SALES}"]
    end_user: "{{userPrincipalName}}"
    tags:
      department: "{{department}}"
      region: "{{country}}"
""")


def write_config(tmp_path: Path, nebuly: NebulyStandIn, entra: Entra,
                 secret: str) -> tuple[Path, SyncdConfig]:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(20)])
    secret_file = tmp_path / "entra-secret"
    secret_file.write_text(secret, encoding="utf-8")
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(nebuly.url, csv_path, source=entra_yaml(entra, secret_file)),
                   encoding="utf-8")
    return cfg, load_config(cfg)


def test_entra_and_csv_sync_their_union(tmp_path: Path, standin: NebulyStandIn,
                                        graph: Entra) -> None:
    _, config = write_config(tmp_path, standin, graph, str(graph.standin.identity.client_secret))
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.OK, report
    roster = {u["end_user"]: u for u in standin.users()}
    csv_ids = {f"user{i:05d}@example.com" for i in range(20)}
    assert set(roster) == csv_ids | SALES_IDS
    assert roster["user140@contoso.example"]["tags"] == {"department": "Marketing",
                                                         "region": "US"}
    standin.reset_calls()
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK and standin.write_calls() == 0


def test_failed_graph_read_writes_nothing(tmp_path: Path, standin: NebulyStandIn,
                                          graph: Entra) -> None:
    _, config = write_config(tmp_path, standin, graph, str(graph.standin.identity.client_secret))
    assert run_once(config, today=TODAY).exit_code == ExitCode.OK
    before = standin.users()
    standin.reset_calls()
    graph.standin.drop_page(after=0)  # the Graph read dies on its first page
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before
    graph.standin.throttle(503, retry_after=1, times=10)  # Graph down for good
    assert run_once(config, today=TODAY).exit_code == ExitCode.SOURCE_FAILED
    assert standin.write_calls() == 0 and standin.users() == before


def test_refused_secret_through_the_cli_writes_nothing_and_shows_no_secret(
        tmp_path: Path, standin: NebulyStandIn, graph: Entra) -> None:
    cfg, _ = write_config(tmp_path, standin, graph, CANARY_CLIENT_SECRET)
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == ExitCode.SOURCE_FAILED, done.stderr
    assert "cannot get an access token" in done.stderr
    assert "Traceback" not in done.stderr
    for canary in CANARIES:
        assert canary not in done.stdout + done.stderr
    assert standin.write_calls() == 0 and standin.users() == []
