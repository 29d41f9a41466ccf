"""Findings from the AD trial that need no AD: config checks, and id case against slapd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncd.core.mapping import SourceMapper
from syncd.sources.ldap.source import LdapSource
from tests.conftest import CANARY_API_KEY, run_cli
from tests.conftest_ldap import (
    backend_fixture,  # noqa: F401  (fixture "backend")
    needs_slapd,
    slapd_factory_fixture,  # noqa: F401  (fixture "slapd_factory")
    source_config,
)
from tests.slapd import PEOPLE, Slapd, user_ldif


def ldap_config_file(tmp_path: Path, source_lines: str) -> Path:
    path = tmp_path / "syncd.yaml"
    path.write_text(f"""
nebuly:
  base_url: http://127.0.0.1:9
  api_key: {CANARY_API_KEY}
sources:
  - name: corp
    type: ldap
    url: ldaps://dc1.corp.example
    base_dn: "OU=People,DC=corp,DC=example"
    end_user: "{{mail}}"
{source_lines}
""")
    return path


# --- 2. a missing or unreadable ca_file crashed the run with exit 1 -----------------


@pytest.mark.parametrize("command", ["validate", "once"])
@pytest.mark.parametrize("problem", ["missing", "directory", "not-pem"])
def test_an_unusable_ca_file_is_a_config_error(tmp_path: Path, command: str,
                                               problem: str) -> None:
    ca_file = tmp_path / "ca.pem"
    if problem == "directory":
        ca_file.mkdir()
    elif problem == "not-pem":
        ca_file.write_text("this is not a certificate\n")
    config = ldap_config_file(tmp_path, f"    ca_file: {ca_file}")
    done = run_cli(command, "--config", str(config))
    assert done.returncode == 2, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("  ") and "ca_file" in x]
    assert line.strip().startswith(f"sources[0].ca_file: {ca_file}")


# --- 6. an unquoted DN in a YAML flow list is split at its commas -------------------


def test_an_unquoted_dn_in_a_flow_list_gets_a_hint(tmp_path: Path) -> None:
    config = ldap_config_file(tmp_path,
                              "    groups: [CN=ai-pilot,OU=Groups,DC=corp,DC=example]")
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 2
    assert "sources[0].groups: item 0 ('CN=ai-pilot') is not a whole DN" in done.stderr
    assert "quote each DN" in done.stderr
    quoted = ldap_config_file(tmp_path,
                              '    groups: ["CN=ai-pilot,OU=Groups,DC=corp,DC=example"]')
    assert run_cli("validate", "--config", str(quoted)).returncode == 0


# --- 6. which of two ids differing only in case was kept depended on server order ---


@needs_slapd
def test_the_record_kept_for_a_case_duplicate_id_does_not_depend_on_server_order(
        slapd_factory: Callable[..., Any], backend: str) -> None:
    # zed is added (and so returned) first; the record kept is abe's, first by DN.
    ldif = (user_ldif("zed", mail="Dup.Person@corp.example", departmentNumber="Z")
            + user_ldif("abe", mail="dup.person@corp.example", departmentNumber="A"))
    server: Slapd = slapd_factory(ldif)
    config = source_config(server, backend, end_user="{mail}",
                           tags={"department": "{departmentNumber}"})
    read = LdapSource(config).read()
    assert [r.origin for r in read.records] == [f"uid=abe,{PEOPLE}", f"uid=zed,{PEOPLE}"]
    mapped = SourceMapper(config).map(read.records)
    (user,) = mapped.users
    assert user.tags == {"department": "A"}
    (problem,) = mapped.problems
    assert problem.origin == f"uid=zed,{PEOPLE}"
    assert f"(uid=abe,{PEOPLE}) is kept" in problem.message
