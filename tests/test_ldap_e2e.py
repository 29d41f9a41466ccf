"""Whole runs from a real slapd into the Nebuly stand-in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import SyncdConfig, load_config
from syncd.run.orchestrator import ExitCode, run_once
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource
from tests.conftest import CANARY_API_KEY
from tests.conftest_ldap import (
    AfterEachPage,
    group_dn,
    needs_slapd,
    slapd_factory_fixture,  # noqa: F401  (fixture "slapd_factory")
    uid,
    user_dn,
)
from tests.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_ldif, user_ldif

pytestmark = needs_slapd

TODAY = date(2026, 11, 22)
N = 3000
IN_PILOT = range(2500)  # 0..1999 directly in ai-pilot, 2000..2499 through a nested group
DISABLED = frozenset(range(0, 2500, 100))


def directory() -> str:
    users = [user_ldif(uid(i), locked=i in DISABLED, departmentNumber=f"D{i % 7}")
             for i in range(N)]
    groups = [
        group_ldif("ai-pilot", [*(user_dn(i) for i in range(2000)), group_dn("pilot-emea")]),
        group_ldif("pilot-emea", [*(user_dn(i) for i in range(2000, 2500)),
                                  group_dn("ai-pilot")]),  # a cycle, for good measure
    ]
    return "".join(users + groups)


def write_config(tmp_path: Path, server: Slapd, standin: NebulyStandIn) -> SyncdConfig:
    path = tmp_path / "syncd.yaml"
    path.write_text(f"""
nebuly:
  base_url: {standin.url}
  api_key: {CANARY_API_KEY}
sources:
  - name: corp
    type: ldap
    url: {server.ldaps_url}
    ca_file: {server.tls.ca_file}
    bind_dn: {SERVICE_DN}
    bind_password_file: {tmp_path / "ldap-password"}
    base_dn: {PEOPLE}
    groups: ["{group_dn("ai-pilot")}"]
    page_size: 500
    end_user: "{{mail}}"
    tags:
      department: "{{departmentNumber}}"
      ou: "{{dn_ou}}"
policy:
  max_deactivations: 10
""")
    (tmp_path / "ldap-password").write_text(SERVICE_PASSWORD)
    return load_config(path)


def roster(standin: NebulyStandIn) -> dict[str, dict[str, Any]]:
    return {u["end_user"]: u for u in standin.users()}


def mail(i: int) -> str:
    return f"{uid(i)}@corp.example"


def test_ldap_to_nebuly(tmp_path: Path, standin: NebulyStandIn,
                        slapd_factory: Callable[..., Slapd]) -> None:
    server = slapd_factory(directory())
    config = write_config(tmp_path, server, standin)

    first = run_once(config, today=TODAY)
    assert first.exit_code == ExitCode.OK, first.error
    eligible = {mail(i) for i in IN_PILOT if i not in DISABLED}
    users = roster(standin)
    assert set(users) == eligible
    assert users[mail(2001)]["tags"] == {"department": "D6", "ou": "people"}

    # Two people leave, a third is locked.
    server.modify(f"dn: {user_dn(7)}\nchangetype: delete\n\n"
                  f"dn: {user_dn(2222)}\nchangetype: delete\n\n"
                  f"dn: {user_dn(42)}\nchangetype: modify\nreplace: pwdAccountLockedTime\n"
                  "pwdAccountLockedTime: 000001010000Z\n\n")
    second = run_once(config, today=TODAY)
    assert second.exit_code == ExitCode.OK, second.error
    ended = {u for u, v in roster(standin).items() if v.get("active_to")}
    assert ended == {mail(7), mail(2222), mail(42)}

    # A read that dies part-way writes nothing, even though there is work to do.
    server.modify(f"dn: {user_dn(8)}\nchangetype: delete\n\n")
    standin.reset_calls()
    before = roster(standin)

    def stop_after_first_page(count: int) -> None:
        server.stop()

    source_config = config.sources[0]
    assert isinstance(source_config, LdapSourceConfig)
    third = run_once(config, today=TODAY,
                     sources=[AfterEachPage(LdapSource(source_config), stop_after_first_page)])
    assert third.exit_code == ExitCode.SOURCE_FAILED
    assert third.error is not None and "failed part-way" in third.error
    assert standin.write_calls() == 0
    assert roster(standin) == before
