"""An LDAP source and an Entra ID source together: their union, one user per person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from standins.entra.data import Directory, make_users
from standins.entra.server import GraphStandin
from standins.nebuly.server import NebulyStandIn
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest_ldap import corp_fixture
from tests.e2e import (
    TODAY,
    assert_union_with_ldap_pilot,
    ldap_pilot_source,
    sources_config,
    synced,
)
from tests.slapd import Slapd

__all__ = ["corp_fixture"]  # the `corp` slapd fixture, used by name


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
        config = sources_config(standin, ldap_pilot_source(corp), entra)
        report = synced(config)
        # user0 is LDAP's u0100; the disabled Entra account (user2) is left out.
        assert_union_with_ldap_pilot(standin, report, {"user1@contoso.example"})

        standin.reset_calls()
        graph.drop_page(after=0)  # Entra fails mid-read: nobody is deactivated
        failed = run_once(config, today=TODAY)
        assert failed.exit_code == ExitCode.SOURCE_FAILED
        assert standin.write_calls() == 0
        assert not any(u.get("active_to") for u in standin.users())
