"""An LDAP source and an Entra ID source together: their union, one user per person."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from standins.entra.data import Directory, make_users
from standins.entra.server import GraphStandin
from standins.nebuly.server import NebulyStandIn
from syncd.config.model import SyncdConfig
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import CANARY_API_KEY, roster
from tests.conftest_ldap import PILOT_NESTED, corp_fixture, group_dn, source_config
from tests.slapd import Slapd

__all__ = ["corp_fixture"]  # the `corp` slapd fixture, used by name

TODAY = date(2026, 11, 22)


def test_ldap_and_entra_sync_their_union(tmp_path: Path, standin: NebulyStandIn,
                                         corp: Slapd) -> None:
    users = make_users(3)
    # The same person as LDAP's u0100 (the id differs only in case), with other values.
    users[0] |= {"userPrincipalName": "U0100@corp.example", "department": "Graph-dept",
                 "jobTitle": "Engineer"}
    users[2]["accountEnabled"] = False
    with GraphStandin(Directory(users), tls_dir=tmp_path / "tls") as graph:
        identity = graph.identity
        entra: dict[str, Any] = {
            "name": "entra", "type": "entra", "tenant_id": identity.tenant_id,
            "client_id": identity.client_id, "client_secret": identity.client_secret,
            "graph_url": graph.graph_url, "authority": graph.authority,
            "ca_file": str(graph.tls.ca_file), "max_retry_delay": "2s",
            "end_user": "{userPrincipalName}",
            "tags": {"department": "{department}", "role": "{jobTitle}"},
        }
        ldap = source_config(corp, "ldap3", groups=[group_dn("ai-pilot")], end_user="{mail}",
                             tags={"department": "{departmentNumber}"})
        config = SyncdConfig.model_validate({
            "nebuly": {"base_url": standin.url, "api_key": CANARY_API_KEY},
            "sources": [ldap, entra], "policy": {"max_deactivations": "100%"}})

        report = run_once(config, today=TODAY)
        assert report.exit_code == ExitCode.OK, report.summary()
        users_now = roster(standin)
        expected = {f"{u}@corp.example" for u in PILOT_NESTED} | {"user1@contoso.example"}
        assert set(users_now) == expected  # the disabled Entra account is left out
        # One user for the person in both; LDAP (first in config order) wins the
        # department, Entra alone has a role; the disagreement is counted.
        assert users_now["u0100@corp.example"]["tags"] == {"department": "D0",
                                                           "role": "Engineer"}
        assert report.summary()["conflicts"] == 1
        assert report.summary()["desired_users"] == len(expected)

        standin.reset_calls()
        graph.drop_page(after=0)  # Entra fails mid-read: nobody is deactivated
        failed = run_once(config, today=TODAY)
        assert failed.exit_code == ExitCode.SOURCE_FAILED
        assert standin.write_calls() == 0
        assert not any(u.get("active_to") for u in standin.users())
