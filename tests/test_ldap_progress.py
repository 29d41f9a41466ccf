"""A long LDAP read says how far it is (issue 16): the source tells the receiver each
page; the log gets `source.progress`, a terminal the live line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from syncd.run.progress import SourceProgress
from syncd.sources.ldap.source import LdapSource
from tests.conftest import CANARY_API_KEY
from tests.conftest_ldap import (
    corp_fixture,  # noqa: F401  (fixture "corp")
    source_config,
)
from tests.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd
from tests.terminal import run_on_terminals


def test_each_ldap_page_is_counted_in_the_progress_events(
        corp: Slapd, _logs_without_secrets: list[dict[str, Any]]) -> None:
    ticks = iter(range(0, 10_000))  # every look at the clock: 1 s later
    progress = SourceProgress("corp", structlog.get_logger("syncd"),
                              lambda: float(next(ticks)), log_every=0)
    read = LdapSource(source_config(corp, page_size=200)).read(progress)
    events = [e for e in _logs_without_secrets if e["event"] == "source.progress"]
    assert [e["pages"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["records"] == 200
    assert events[-1]["records"] == progress.records >= len(read.records) > 1000


def test_an_ldap_read_shows_the_live_line_on_a_terminal(tmp_path: Path, corp: Slapd) -> None:
    (tmp_path / "ldap-password").write_text(SERVICE_PASSWORD)
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(f"""
nebuly:
  base_url: https://nebuly.example
  api_key: {CANARY_API_KEY}
sources:
  - name: corp
    type: ldap
    url: {corp.ldap_url}
    start_tls: true
    ca_file: {corp.tls.ca_file}
    bind_dn: {SERVICE_DN}
    bind_password_file: {tmp_path / "ldap-password"}
    base_dn: {PEOPLE}
    page_size: 200
    end_user: "{{uid}}"
    tags:
      department: "{{departmentNumber}}"
""")
    ran = run_on_terminals("preview", "--limit", "1", "--config", str(cfg),
                           env={"SYNCD_LIVE_EVERY": "0"})
    assert ran.code == 0, ran.stderr
    assert "\r\x1b[Kreading corp: 200 records, " in ran.stderr
    assert "\r\x1b[Kreading corp: 1,000 records, " in ran.stderr
    assert "reading corp" not in ran.stdout
