"""Fixtures for the Entra source tests: the Graph stand-in and source configs.

Test modules import what they use (`from tests.conftest_entra import graph, ...`);
pytest picks fixtures up from the module namespace.

The directory ("contoso"): 2,500 users; every 50th disabled (i % 50 == 49),
every 40th a guest (i % 40 == 39). Groups:
  eng      users 0-99, nested: eng-sub (100-149) -> eng-sub2 (150-159) -> eng (a cycle)
  sales    users 140-199 (overlaps eng-sub on 140-149)
  contract users 0-9 (used as exclude_groups)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from standins.entra.data import Directory, Group, make_users, user_id
from standins.entra.server import GraphStandin, Identity
from standins.entra.tls import make_client_certificate
from syncd.sources.entra.config import EntraSourceConfig

N_USERS = 2500
DISABLED_EVERY = 50
GUEST_EVERY = 40
FEDERATED_TOKEN = "eyJ.standin-federated-service-account-token"
CERT_PASSWORD = "standin-cert-password"

ENG, ENG_SUB, ENG_SUB2 = "group-eng", "group-eng-sub", "group-eng-sub2"
SALES, CONTRACT = "group-sales", "group-contract"


def ids(indexes: range | list[int]) -> list[str]:
    return [user_id(i) for i in indexes]


def is_disabled(i: int) -> bool:
    return i % DISABLED_EVERY == DISABLED_EVERY - 1


def is_guest(i: int) -> bool:
    return i % GUEST_EVERY == GUEST_EVERY - 1


def contoso() -> Directory:
    groups = {
        ENG: Group(ids(range(100)), [ENG_SUB]),
        ENG_SUB: Group(ids(range(100, 150)), [ENG_SUB2]),
        ENG_SUB2: Group(ids(range(150, 160)), [ENG]),
        SALES: Group(ids(range(140, 200))),
        CONTRACT: Group(ids(range(10))),
    }
    users = make_users(N_USERS, disabled_every=DISABLED_EVERY, guest_every=GUEST_EVERY)
    for i, user in enumerate(users):
        # Complex and directory-extension properties, for the $select mapping.
        user["employeeOrgData"] = {"costCenter": f"CC{i % 7}", "division": "Ops"}
        user["extension_abc123_badge"] = f"B{i}"
    return Directory(users, groups)


@dataclass(frozen=True)
class Entra:
    """The running stand-in plus the credential files the tests configure."""

    standin: GraphStandin
    certificate_file: Path
    encrypted_certificate_file: Path
    token_file: Path

    def config(self, **overrides: Any) -> EntraSourceConfig:
        """A valid client-secret config against the stand-in; overrides win.

        Passing any credential key replaces the default client secret.
        """
        identity = self.standin.identity
        data: dict[str, Any] = {
            "name": "entra", "type": "entra", "tenant_id": identity.tenant_id,
            "client_id": identity.client_id, "client_secret": identity.client_secret,
            "graph_url": self.standin.graph_url, "authority": self.standin.authority,
            "ca_file": str(self.standin.tls.ca_file), "end_user": "{userPrincipalName}",
            "tags": {"department": "{department}", "region": "{country}", "role": "{jobTitle}"},
            "max_retry_delay": "5s",
        }
        credential_keys = {"client_secret_file", "certificate_file", "workload_identity",
                           "managed_identity", "client_secret"}
        if credential_keys & overrides.keys():
            del data["client_secret"]
        data.update(overrides)
        return EntraSourceConfig.model_validate(data)


def source_yaml(standin: GraphStandin, secret_file: Path, name: str, keys: str) -> str:
    """A `type: entra` source entry for a whole-run config: the stand-in's connection, the
    client secret from `secret_file`, then `keys` (YAML lines indented by four spaces)."""
    return f"""
  - name: {name}
    type: entra
    tenant_id: {standin.identity.tenant_id}
    client_id: {standin.identity.client_id}
    client_secret_file: {secret_file}
    graph_url: {standin.graph_url}
    authority: {standin.authority}
    ca_file: {standin.tls.ca_file}
    max_retry_delay: 2s
{keys}"""


@pytest.fixture(scope="session")
def entra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Entra]:
    """One stand-in for the whole session (its pages are cached per query)."""
    base = tmp_path_factory.mktemp("entra")
    cert_file = base / "app.pem"
    cert_pem = make_client_certificate(cert_file)
    encrypted = base / "app-encrypted.pem"
    encrypted_pem = make_client_certificate(encrypted, password=CERT_PASSWORD.encode())
    token_file = base / "federated-token"
    token_file.write_text(FEDERATED_TOKEN, encoding="utf-8")
    identity = Identity(client_certificates=(cert_pem, encrypted_pem),
                        federated_token=FEDERATED_TOKEN)
    with GraphStandin(contoso(), identity, tls_dir=base / "tls") as standin:
        yield Entra(standin, cert_file, encrypted, token_file)


@pytest.fixture
def graph(entra_server: Entra) -> Iterator[Entra]:
    """The shared stand-in with counters and faults cleared before and after the test."""
    entra_server.standin.reset()
    yield entra_server
    entra_server.standin.reset()
