"""Write calls at scale: a 10k roster with 1% new, 1% changed and 1% departed people.

Behaviour, not speed: the run must make the fewest write calls its batch size
allows (inserts use one verb; updates and deactivations share the other), fill
every batch but the last of each verb, and make none at all once converged.
Timings live in bench/ (bench_sync.py), never in tests.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from standins.nebuly.faults import WRITE_METHODS
from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import config_text, person, write_csv

TODAY = date(2026, 11, 22)
PEOPLE = 10_000
SHARE = PEOPLE // 100  # 1%


def _nebuly_before() -> list[dict[str, object]]:
    """Nebuly lacks people 0..99, holds a stale department for 100..199, and holds
    100 people who left."""
    users: list[dict[str, object]] = []
    for i in range(SHARE, PEOPLE):
        row = person(i)
        department = "Stale" if i < 2 * SHARE else row["department"]
        users.append({"end_user": row["email"], "active_from": "2025-01-01", "active_to": None,
                      "tags": {"department": department, "region": row["country"]}})
    users += [{"end_user": f"left{j:05d}@example.com", "active_from": "2025-01-01",
               "active_to": None, "tags": {"department": "Sales", "region": "FR"}}
              for j in range(SHARE)]
    return users


@pytest.mark.parametrize("batch_size", [500, 40, 7])
def test_write_calls_are_the_minimum_for_a_large_roster(
        tmp_path: Path, standin: NebulyStandIn, batch_size: int) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(PEOPLE)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path, nebuly=f"  batch_size: {batch_size}"))
    config = load_config(cfg)
    standin.seed(_nebuly_before())
    standin.reset_calls()

    report = run_once(config, today=TODAY)

    summary = report.summary()
    assert report.exit_code == ExitCode.OK, summary
    assert (summary["inserted"], summary["updated"], summary["deactivated"]) == (
        SHARE, SHARE, SHARE)
    assert summary["unchanged"] == PEOPLE - 2 * SHARE
    writes = [c for c in standin.calls if c.method in WRITE_METHODS]
    inserts = [c for c in writes if c.method == "PUT"]  # platform-users: PUT inserts
    updates = [c for c in writes if c.method == "POST"]  # POST updates (and deactivates)
    assert len(inserts) == math.ceil(SHARE / batch_size)
    assert len(updates) == math.ceil(2 * SHARE / batch_size)
    assert len(writes) == summary["write_calls"] == len(inserts) + len(updates)
    # Full batches: every call but the last of each verb carries batch_size users.
    for calls, total in ((inserts, SHARE), (updates, 2 * SHARE)):
        assert sum(c.n_users for c in calls) == total
        assert all(c.n_users == batch_size for c in calls[:-1])

    standin.reset_calls()
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK, again.summary()
    assert again.summary()["unchanged"] == PEOPLE + SHARE  # the departed stay, inactive
    assert standin.write_calls() == 0 and again.summary()["write_calls"] == 0
