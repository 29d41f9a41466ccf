"""Entra source config, $select mapping and JSON flattening (no server, no SDK needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncd.config.model import ConfigError, parse_config
from syncd.sources.entra.attrs import flatten_user, graph_select
from syncd.sources.entra.config import EntraSourceConfig
from tests.conftest import modules_imported_by

BASE: dict[str, Any] = {
    "name": "entra", "type": "entra", "tenant_id": "t", "client_id": "c",
    "end_user": "{userPrincipalName}",
}


def config(**overrides: Any) -> EntraSourceConfig:
    return EntraSourceConfig.model_validate(BASE | overrides)


def problems(source_yaml: str) -> list[str]:
    text = f"nebuly:\n  api_key: k\nsources:\n{source_yaml}"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def test_example_config_from_the_issue_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "s3cret")
    text = Path(__file__).parent.parent.joinpath("config/example-entra.yaml").read_text()
    loaded = parse_config(text)
    source = loaded.sources[0]
    assert isinstance(source, EntraSourceConfig)
    assert source.credential_kind == "client_secret"
    assert source.resolve_client_secret() == "s3cret"
    assert "s3cret" not in repr(source)


@pytest.mark.parametrize("credential", [
    {"client_secret": "x"}, {"client_secret_file": "/run/secrets/entra"},
    {"certificate_file": "/etc/syncd/app.pem"}, {"workload_identity": True},
    {"managed_identity": True},
])
def test_each_credential_kind_alone_is_valid(credential: dict[str, Any]) -> None:
    assert config(**credential).credential_kinds()


def test_no_credential_says_what_to_configure() -> None:
    found = problems("  - {name: e, type: entra, tenant_id: t, client_id: c, end_user: '{mail}'}")
    assert found == ["sources[0]: configure exactly one credential: client_secret (or "
                     "client_secret_file), certificate_file, workload_identity: true or "
                     "managed_identity: true (line 4)"]


def test_two_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match=r"exactly one credential.*found client_secret, "
                                         "managed_identity"):
        config(client_secret="x", managed_identity=True)
    with pytest.raises(ValueError, match="client_secret or client_secret_file, not both"):
        config(client_secret="x", client_secret_file="/f")


def test_ids_required_except_for_managed_identity() -> None:
    with pytest.raises(ValueError, match="tenant_id and client_id required with client_secret"):
        EntraSourceConfig.model_validate({"name": "e", "type": "entra", "end_user": "{mail}",
                                          "client_secret": "x"})
    managed = EntraSourceConfig.model_validate({"name": "e", "type": "entra",
                                                "end_user": "{mail}", "managed_identity": True})
    assert managed.tenant_id is None


def test_urls_and_bounds() -> None:
    with pytest.raises(ValueError, match="use https"):
        config(client_secret="x", graph_url="http://graph.example.com/v1.0")
    assert config(client_secret="x", graph_url="http://127.0.0.1:8080/v1.0/").graph_url == \
        "http://127.0.0.1:8080/v1.0"
    with pytest.raises(ValueError, match="less than 180s"):
        config(client_secret="x", max_retry_delay="5m")
    with pytest.raises(ValueError):
        config(client_secret="x", page_size=1000)
    with pytest.raises(ValueError, match="token_file is only used with workload_identity"):
        config(client_secret="x", token_file="/f")


def test_a_loopback_graph_url_is_a_stand_in_for_the_public_cloud() -> None:
    # The whole of 127.0.0.0/8 is this machine, as nebuly.base_url counts it.
    stand_in = config(client_secret="x", graph_url="https://127.0.0.2:8443/v1.0")
    assert stand_in.token_scope == "https://graph.microsoft.com/.default"


def test_plain_http_graph_url_only_where_the_graph_sdk_sends_it() -> None:
    assert config(client_secret="x", graph_url="http://[::1]:8080/v1.0").graph_url == \
        "http://[::1]:8080/v1.0"
    # Loopback, but kiota would refuse every request to it: validate says so instead.
    with pytest.raises(ValueError, match=r"'http://127.0.0.2:8080/v1.0': plain http only to "
                       r"localhost, 127.0.0.1 or ::1 \(the Graph SDK refuses other hosts\)"):
        config(client_secret="x", graph_url="http://127.0.0.2:8080/v1.0")


def test_urls_lose_the_spaces_around_them() -> None:
    us = config(client_secret="x", graph_url=" https://graph.microsoft.us/v1.0/ ",
                authority="https://login.microsoftonline.us ")
    assert (us.graph_url, us.authority) == ("https://graph.microsoft.us/v1.0",
                                            "https://login.microsoftonline.us")


def test_a_url_without_scheme_is_answered_with_one_to_write() -> None:
    found = problems("  - {name: e, type: entra, tenant_id: t, client_id: c, client_secret: s,"
                     " end_user: '{mail}', graph_url: graph.microsoft.us/v1.0,"
                     " authority: http://login.example.com}\n")
    assert any("sources[0].graph_url: 'graph.microsoft.us/v1.0' is not an http(s) URL; write "
               "it like https://graph.microsoft.com/v1.0" in line for line in found), found
    assert any("sources[0].authority: 'http://login.example.com': use https (the client "
               "credential is sent to it" in line for line in found), found


def test_token_scope_follows_the_national_cloud() -> None:
    assert config(client_secret="x").token_scope == "https://graph.microsoft.com/.default"
    us = config(client_secret="x", graph_url="https://graph.microsoft.us/v1.0",
                authority="https://login.microsoftonline.us")
    assert us.token_scope == "https://graph.microsoft.us/.default"
    assert config(client_secret="x", scope="api://x/.default").token_scope == "api://x/.default"


def test_select_maps_template_names_to_graph_spelling() -> None:
    source = config(client_secret="x", end_user="{MAIL}", tags={
        "d": "{department}", "c": "{costcenter}", "x": "{extensionAttribute7}",
        "e": "{extension_0a1b_Badge}", "o": {"template": "{onpremisessamaccountname}"},
    })
    assert graph_select(source) == [
        "id", "accountEnabled", "userType", "userPrincipalName", "employeeOrgData",
        "department", "extension_0a1b_Badge", "onPremisesExtensionAttributes", "mail",
        "onPremisesSamAccountName",
    ]


def test_flatten_user() -> None:
    flat = flatten_user({
        "@odata.type": "#microsoft.graph.user", "id": "1", "accountEnabled": True,
        "mail": None, "jobTitle": "", "businessPhones": ["+33 1", "+33 2"], "otherMails": [],
        "employeeOrgData": {"costCenter": "CC1", "division": None},
        "onPremisesExtensionAttributes": {"extensionAttribute1": "x", "extensionAttribute2": None},
        "Department": "Sales", "count": 3,
    })
    assert flat == {"id": "1", "accountenabled": "true", "businessphones": "+33 1, +33 2",
                    "costcenter": "CC1", "extensionattribute1": "x", "department": "Sales",
                    "count": "3"}


def test_config_and_source_construction_do_not_import_the_sdk() -> None:
    loaded = modules_imported_by(
        "from syncd.config.model import parse_config\n"
        "from syncd.sources.factory import build_source\n"
        "cfg = parse_config('''nebuly: {api_key: k}\n"
        "sources: [{name: e, type: entra, tenant_id: t, client_id: c, client_secret: s,"
        " end_user: '{mail}'}]''')\n"
        "build_source(cfg.sources[0])\n")
    sdks = ("msgraph", "msgraph_core", "azure", "kiota_abstractions", "kiota_http", "aiohttp")
    assert sorted(m for m in loaded if m.split(".")[0] in sdks) == []
