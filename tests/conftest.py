"""Shared fixtures: a real Nebuly stand-in server, config files, canary secrets."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog

from standins.jwt import make_rsa_key
from standins.nebuly.server import NebulyStandIn
from syncd import log
from syncd.config.model import SyncdConfig, load_config

# The Samba AD DC fixture ("ad") is registered once here, not imported by each test
# module: an imported session fixture is a new fixture per module, and a second DC
# cannot start while the first holds the standard ports.
pytest_plugins = ["tests.conftest_ad"]

# Canary secrets: configured throughout the suite; they must never appear in
# any log line, message, plan file or exception text.
CANARY_API_KEY = "CANARY-nebuly-key-7f3a9c"
CANARY_PASSWORD = "CANARY-bind-pw-51d0e2"
CANARY_CLIENT_SECRET = "CANARY-client-secret-a8b4c6"
# The Okta stand-in accepts exactly this API token: every Okta test sends it.
CANARY_OKTA_TOKEN = "CANARY-okta-ssws-token-3e9d71"
# Private keys cannot carry a readable marker: the canary is a line of the key's
# body. The keys are real (the stand-ins verify what they sign) and made once.
OKTA_PRIVATE_KEY, OKTA_PUBLIC_KEY = make_rsa_key()
GOOGLE_PRIVATE_KEY, GOOGLE_PUBLIC_KEY = make_rsa_key()
CANARY_OKTA_KEY = OKTA_PRIVATE_KEY.splitlines()[7]
CANARY_GOOGLE_KEY = GOOGLE_PRIVATE_KEY.splitlines()[7]
CANARIES = (CANARY_API_KEY, CANARY_PASSWORD, CANARY_CLIENT_SECRET, CANARY_OKTA_TOKEN,
            CANARY_OKTA_KEY, CANARY_GOOGLE_KEY)

FIELDS = ("email", "department", "country", "title")

# Tests compare output byte for byte: a NO_COLOR or FORCE_COLOR of the machine running
# them must not change it (the colour tests set them where they mean to).
for _name in ("NO_COLOR", "FORCE_COLOR"):
    os.environ.pop(_name, None)


def person(i: int, department: str = "Sales", country: str = "FR") -> dict[str, str]:
    return {"email": f"user{i:05d}@example.com", "department": department,
            "country": country, "title": "Analyst"}


def write_csv(path: Path, rows: Sequence[dict[str, str]], fields: Sequence[str] = FIELDS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _merged(base: str, extra: str) -> str:
    """Indented `key: value` lines of `base`, overridden/extended by those of `extra`."""
    lines: dict[str, str] = {}
    for line in (base + "\n" + extra).splitlines():
        if line.strip():
            lines[line.split(":", 1)[0].strip()] = line
    return "\n".join(lines.values())


def config_text(url: str, csv_path: Path, *, policy: str = "", nebuly: str = "",
                source: str = "") -> str:
    """A CSV-source config; `policy`/`nebuly` lines override the defaults, `source` adds keys."""
    nebuly_lines = _merged(f"""  base_url: {url}
  api: platform-users
  api_key: {CANARY_API_KEY}
  batch_size: 500
  max_retry_wait: 5s""", nebuly)
    policy_lines = _merged('  mode: sync\n  max_deactivations: "10%"', policy)
    return f"""
nebuly:
{nebuly_lines}
sources:
  - name: hr
    type: csv
    path: {csv_path}
    end_user: "{{email}}"
    tags:
      department: "{{department}}"
      region: "{{country}}"
{source}
policy:
{policy_lines}
"""


def roster(standin: NebulyStandIn) -> dict[str, dict[str, Any]]:
    """The stand-in's roster by end_user."""
    return {u["end_user"]: u for u in standin.users()}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`syncd ARGS` as a subprocess; never a traceback, never a secret in its output."""
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    for canary in CANARIES:
        assert canary not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def modules_imported_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` (what a start pays for)."""
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(*sys.modules)"],
                          capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


@pytest.fixture
def standin() -> Iterator[NebulyStandIn]:
    server = NebulyStandIn(api_key=CANARY_API_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_config(tmp_path: Path, standin: NebulyStandIn) -> Any:
    """make_config(rows, policy=..., nebuly=..., source=...) -> (SyncdConfig, csv path)."""

    def make(rows: Sequence[dict[str, str]], **extra: str) -> tuple[SyncdConfig, Path]:
        csv_path = write_csv(tmp_path / "roster.csv", rows)
        cfg = tmp_path / "syncd.yaml"
        cfg.write_text(config_text(standin.url, csv_path, **extra), encoding="utf-8")
        return load_config(cfg), csv_path

    return make


@pytest.fixture
def stateful(tmp_path: Path, standin: NebulyStandIn) -> Any:
    """(rows, policy="") -> config path, with a state_dir; rewrite rows by calling again."""
    def make(rows: list[dict[str, str]], policy: str = "") -> Path:
        csv_path = write_csv(tmp_path / "roster.csv", rows)
        cfg = tmp_path / "syncd.yaml"
        cfg.write_text(config_text(standin.url, csv_path, policy=policy)
                       + f"state_dir: {tmp_path / 'state'}\n")
        return cfg
    return make


@pytest.fixture(autouse=True)
def _logs_without_secrets() -> Iterator[list[dict[str, Any]]]:
    """Every test's log events go through the real processors and are checked for canaries."""
    log.configure("json", "debug")
    with structlog.testing.capture_logs(
            processors=[log.redact_processor]) as events:
        yield events
    text = repr(events)
    for canary in CANARIES:
        assert canary not in text, "a secret reached the logs"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failed one: nothing may pass by not running.

    The LDAP tests skip on a developer machine without slapd or python-ldap;
    CI installs both, so a skip there means a broken install.
    """
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; CI installs everything, "
                            "so this is a failure", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
