"""Okta and Google source configs: the example files load, bad values are named by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config.model import ConfigError, parse_config
from syncd.sources.google.config import GoogleSourceConfig
from syncd.sources.okta.config import DEFAULT_STATUSES, OktaCredentialKind, OktaSourceConfig
from syncd.sources.paths import path_tree, pick

CONFIG_DIR = Path(__file__).parent.parent / "config"


def problems(source_yaml: str) -> list[str]:
    text = f"nebuly:\n  api_key: k\nsources:\n{source_yaml}"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def okta_yaml(extra: str) -> str:
    return ("  - name: okta\n    type: okta\n    end_user: '{profile.email}'\n"
            + "".join(f"    {line}\n" for line in extra.strip().splitlines()))


def google_yaml(extra: str) -> str:
    return ("  - name: g\n    type: google\n    end_user: '{primaryEmail}'\n"
            "    credentials_file: /run/secrets/sa.json\n"
            + "".join(f"    {line}\n" for line in extra.strip().splitlines()))


def test_example_okta_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEBULY_API_KEY", "k")
    monkeypatch.setenv("OKTA_API_TOKEN", "00secret-token")
    source = parse_config((CONFIG_DIR / "example-okta.yaml").read_text()).sources[0]
    assert isinstance(source, OktaSourceConfig)
    assert source.credential_kind is OktaCredentialKind.API_TOKEN
    assert source.app == "0oa1ai2agent3" and list(source.statuses) == list(DEFAULT_STATUSES)
    assert source.resolve_api_token() == "00secret-token"
    assert "00secret-token" not in repr(source)


def test_example_google_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEBULY_API_KEY", "k")
    source = parse_config((CONFIG_DIR / "example-google.yaml").read_text()).sources[0]
    assert isinstance(source, GoogleSourceConfig)
    assert source.customer_id == "my_customer" and source.org_units == ["/Engineering"]
    assert source.groups == ["ai-pilot@example.com"]


@pytest.mark.parametrize(("extra", "expected"), [
    ("org_url: https://acme.okta.com", "sources[0]: configure a credential"),
    ("org_url: https://acme.okta.com\napi_token: t\nclient_id: 0oa1\nprivate_key_file: k.pem",
     "not both"),
    ("org_url: https://acme.okta.com\nclient_id: 0oa1", "private_key_file is required"),
    ("org_url: http://acme.okta.com\napi_token: t",
     "sources[0].org_url: 'http://acme.okta.com': use https (the API token is sent to it"),
    ("org_url: acme.okta.com\napi_token: t", "sources[0].org_url: 'acme.okta.com' is not an "
     "http(s) URL; write it like https://acme.okta.com"),
    ("org_url: https://acme-admin.okta.com\napi_token: t", "is the admin console"),
    ("org_url: https://acme.okta.com/api/v1\napi_token: t", "without a path"),
    ("org_url: https://acme.okta.com\napi_token: t\nstatuses: [ACTIVE, GONE]",
     "sources[0].statuses[1]: expected one of 'STAGED'"),
    ("org_url: https://acme.okta.com\napi_token: t\nstatuses: []", "at least one status"),
    ("org_url: https://acme.okta.com\napi_token: t\ngroups: ['a/b']", "sources[0].groups: "),
    ("org_url: https://acme.okta.com\napi_token: t\nkey_id: k", "key_id is only used"),
    ("org_url: https://acme.okta.com\napi_token: t\npage_size: 5000", "sources[0].page_size"),
    ("api_token: t", "sources[0].org_url: field required"),
    ("org_url: https://acme.okta.com\napi_token: t\napp_id: x", "sources[0].app_id: unknown key"),
])
def test_bad_okta_config_names_the_field(extra: str, expected: str) -> None:
    found = problems(okta_yaml(extra))
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(("extra", "expected"), [
    ("customer: C01\ndomain: example.com", "give customer or domain, not both"),
    ("org_units: [Engineering]", "sources[0].org_units: 'Engineering': org unit "
     "paths start with /"),
    ("subject: admin", "sources[0].subject: 'admin' is not an email address"),
    ("api_endpoint: http://admin.example.com/", "sources[0].api_endpoint: "
     "'http://admin.example.com/': use https (the access token is sent to it"),
    ("api_endpoint: admin.googleapis.com", "sources[0].api_endpoint: 'admin.googleapis.com' "
     "is not an http(s) URL; write it like https://admin.googleapis.com/"),
    ("groups: ['']", "sources[0].groups: "),
    ("page_size: 501", "sources[0].page_size"),
    ("include_deleted: true", "sources[0].include_deleted: unknown key"),
])
def test_bad_google_config_names_the_field(extra: str, expected: str) -> None:
    found = problems(google_yaml(extra))
    assert any(expected in line for line in found), found


def test_plain_http_is_allowed_to_any_loopback_address_as_for_nebuly() -> None:
    okta = OktaSourceConfig.model_validate({
        "name": "o", "type": "okta", "end_user": "{profile.email}", "api_token": "t",
        "org_url": "http://127.0.0.2:8080"})
    assert okta.org_url == "http://127.0.0.2:8080"
    google = GoogleSourceConfig.model_validate({
        "name": "g", "type": "google", "end_user": "{primaryEmail}",
        "credentials_file": "/sa.json", "api_endpoint": "http://127.0.0.2:8080"})
    assert google.api_endpoint == "http://127.0.0.2:8080/"


def test_google_endpoint_loses_the_spaces_around_it() -> None:
    google = GoogleSourceConfig.model_validate({
        "name": "g", "type": "google", "end_user": "{primaryEmail}",
        "credentials_file": "/sa.json", "api_endpoint": " https://admin.googleapis.com "})
    assert google.api_endpoint == "https://admin.googleapis.com/"


def test_google_config_requires_the_key_file() -> None:
    found = problems("  - name: g\n    type: google\n    end_user: '{primaryEmail}'\n")
    assert any(p.startswith("sources[0].credentials_file: field required") for p in found), found


def test_pick_takes_the_named_paths_as_dotted_lower_case_keys() -> None:
    user = {"id": "1", "profile": {"firstName": "Ann", "nickName": None, "age": 3},
            "organizations": [{"department": "R&D"}, {"department": ""}],
            "aliases": ["a@x", "b@x"], "suspended": False, "_links": {"x": "y"}}
    tree = path_tree(["id", "profile", "organizations.0.department",
                      "organizations.1.department", "aliases", "aliases.1", "suspended",
                      "missing.path"])
    assert pick(user, tree) == {
        "id": "1", "profile.firstname": "Ann", "profile.age": "3",
        "organizations.0.department": "R&D", "aliases": "a@x, b@x", "aliases.0": "a@x",
        "aliases.1": "b@x", "suspended": "false"}
    # Only what is named: the links and other users' fields are not read.
    assert pick(user, path_tree(["profile.firstName"])) == {"profile.firstname": "Ann"}
