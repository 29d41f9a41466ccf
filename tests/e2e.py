"""What the whole-run tests of the directory sources share: a config of a 20-person CSV
plus one more source, configs built from source dicts, an inline Okta source, LDAP's
pilot group next to another source, and the checks of a run that synced and of a next
run that has nothing to write."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from standins.nebuly.server import NebulyStandIn
from standins.okta.server import OktaStandin
from syncd.config.model import SyncdConfig, load_config
from syncd.run.orchestrator import ExitCode, RunReport, run_once
from tests.conftest import (
    CANARY_API_KEY,
    CANARY_OKTA_TOKEN,
    config_text,
    person,
    roster,
    write_csv,
)
from tests.conftest_ldap import PILOT_NESTED, group_dn, source_config
from tests.slapd import Slapd

TODAY = date(2026, 11, 22)
CSV_IDS = {f"user{i:05d}@example.com" for i in range(20)}


def write_csv_config(tmp_path: Path, nebuly: NebulyStandIn, source: str,
                     policy: str = "") -> tuple[Path, SyncdConfig]:
    """A config file reading the CSV of CSV_IDS and `source` (its YAML list item):
    the file, for the CLI, and the config it loads to."""
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(20)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(nebuly.url, csv_path, source=source, policy=policy),
                   encoding="utf-8")
    return cfg, load_config(cfg)


def sources_config(nebuly: NebulyStandIn, *sources: dict[str, Any]) -> SyncdConfig:
    """A config of these sources (in this order of precedence); any departure allowed."""
    return SyncdConfig.model_validate({
        "nebuly": {"base_url": nebuly.url, "api_key": CANARY_API_KEY},
        "sources": list(sources), "policy": {"max_deactivations": "100%"}})


def okta_source(okta: OktaStandin) -> dict[str, Any]:
    """The Okta stand-in's whole org as a source: department and role tags."""
    assert okta.tls is not None
    return {"name": "okta", "type": "okta", "org_url": okta.org_url,
            "api_token": CANARY_OKTA_TOKEN, "ca_file": str(okta.tls.ca_file),
            "end_user": "{profile.email}",
            "tags": {"department": "{profile.department}", "role": "{profile.title}"}}


def synced(config: SyncdConfig) -> RunReport:
    """One run that must succeed."""
    report = run_once(config, today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    return report


def assert_next_run_writes_nothing(config: SyncdConfig, nebuly: NebulyStandIn) -> None:
    nebuly.reset_calls()
    again = run_once(config, today=TODAY)
    assert again.exit_code == ExitCode.OK and nebuly.write_calls() == 0


def ldap_pilot_source(corp: Slapd) -> dict[str, Any]:
    """The LDAP directory's ai-pilot group (nested), u0100 in department D0."""
    return source_config(corp, "ldap3", groups=[group_dn("ai-pilot")], end_user="{mail}",
                         tags={"department": "{departmentNumber}"})


def assert_union_with_ldap_pilot(nebuly: NebulyStandIn, report: RunReport,
                                 others: set[str]) -> None:
    """Nebuly holds LDAP's pilot group and `others` from the second source, whose copy of
    u0100 (another case, an Engineer elsewhere) is the same person: one user, with LDAP's
    department (first in config order) and the other's role; the disagreement is counted."""
    users = roster(nebuly)
    expected = {f"{u}@corp.example" for u in PILOT_NESTED} | others
    assert set(users) == expected
    assert users["u0100@corp.example"]["tags"] == {"department": "D0", "role": "Engineer"}
    assert report.summary()["conflicts"] == 1
    assert report.summary()["desired_users"] == len(expected)
