"""Unit tests of the pure LDAP helpers: binary values, multi-values, DNs, filters, config."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from syncd.config.model import ConfigError, parse_config
from syncd.sources.ldap.backends import ad_bind_hint, choose_backend, failure_for_result
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import search_plan
from syncd.sources.ldap.values import (
    ValueRules,
    dn_attributes,
    escape_filter_value,
    guid_string,
    normalise_dn,
    parse_dn,
    render_value,
    search_filter,
    sid_string,
)

# A GUID as AD shows it, and the bytes AD stores (first three fields little-endian).
GUID_TEXT = "c8e2a5b1-3f4d-4e6a-9b1c-0d2e3f405162"
GUID_BYTES = bytes.fromhex("b1a5e2c84d3f6a4e9b1c0d2e3f405162")
# S-1-5-21-1004336348-1177238915-682003330-512 (Domain Admins of some domain)
SID_BYTES = bytes.fromhex("010500000000000515000000dcf4dc3b833d2b46828ba62800020000")


def test_guid_is_rendered_with_little_endian_first_fields() -> None:
    assert guid_string(GUID_BYTES) == GUID_TEXT
    assert uuid.UUID(GUID_TEXT).bytes_le == GUID_BYTES


def test_sid_is_rendered_in_s_1_5_21_form() -> None:
    assert sid_string(SID_BYTES) == "S-1-5-21-1004336348-1177238915-682003330-512"
    assert sid_string(bytes.fromhex("0101000000000005" "12000000")) == "S-1-5-18"


@pytest.mark.parametrize("raw", [b"", b"\x01\x05\x00", SID_BYTES[:-1]])
def test_malformed_sid_is_an_error_for_the_parser(raw: bytes) -> None:
    with pytest.raises(ValueError):
        sid_string(raw)


def test_malformed_binary_values_never_drop_a_person() -> None:
    # A record dropped for a bad value would read as a departure: hex instead.
    assert render_value(b"\x01\x02", "guid") == "0102"
    assert render_value(b"\xff\xfe", None) == "fffe"
    assert render_value("Zoë".encode(), None) == "Zoë"
    assert render_value(b"\x00\x01", "base64") == "AAE="


def test_builtin_binary_attributes_and_overrides() -> None:
    rules = ValueRules()
    assert rules.render("objectguid", [GUID_BYTES]) == GUID_TEXT
    assert rules.render("objectsid", [SID_BYTES]).startswith("S-1-5-21-")  # type: ignore[union-attr]
    custom = ValueRules(binary={"photohash": "hex"})
    assert custom.render("photohash", [b"\xab\xcd"]) == "abcd"


def test_multi_value_first_and_join() -> None:
    values = [b"Sales", b"Marketing", b"Sales"]
    assert ValueRules("first").render("department", values) == "Sales"
    assert ValueRules("join", " | ").render("department", values) == "Marketing | Sales"
    assert ValueRules("join").render("department", [b"only"]) == "only"
    assert ValueRules().render("department", []) is None


def test_dn_parsing_handles_escapes_and_multi_valued_rdns() -> None:
    dn = r"cn=Doe\, John+uid=jd,OU=Sales , ou=EMEA,dc=corp,dc=example"
    assert parse_dn(dn)[0] == [("cn", "Doe, John"), ("uid", "jd")]
    assert parse_dn(r"cn=R\C3\A9mi,dc=x")[0] == [("cn", "Rémi")]
    attrs = dn_attributes(dn)
    assert attrs["dn"] == dn
    assert attrs["dn_rdn"] == "Doe, John"
    assert attrs["dn_ou"] == "Sales"
    assert attrs["dn_ou_path"] == "EMEA/Sales"
    assert attrs["dn_domain"] == "corp.example"
    assert attrs["dn_parent"] == "OU=Sales , ou=EMEA,dc=corp,dc=example"


def test_dn_comparison_ignores_case_and_spacing() -> None:
    assert normalise_dn("UID=a, OU=People,DC=x") == normalise_dn("uid=A,ou=people,dc=x")
    assert normalise_dn("uid=a,dc=x") != normalise_dn("uid=b,dc=x")


def test_filter_values_are_escaped() -> None:
    assert escape_filter_value(r"cn=R&D (old)*,ou=x\y") == r"cn=R&D \28old\29\2a,ou=x\5cy"


def test_disabled_rule_is_anded_outside_the_admin_filter() -> None:
    text = search_filter("(|(uid=a)(objectClass=*))", disabled_filter="(x=1)")
    assert text == "(&(|(uid=a)(objectClass=*))(!(x=1)))"


def test_active_directory_filter_uses_in_chain_and_uac_rules() -> None:
    config = LdapSourceConfig.model_validate({
        "name": "ad", "type": "ldap", "preset": "active-directory",
        "url": "ldaps://dc1.corp.example", "base_dn": "dc=corp,dc=example",
        "end_user": "{userPrincipalName}", "tags": {"guid": "{objectGUID}"},
        "groups": ["cn=AI (pilot),ou=groups,dc=corp,dc=example"],
        "exclude_groups": ["cn=contractors,dc=corp,dc=example"]})
    plan = search_plan(config)
    assert plan.filter == (
        "(&(&(objectCategory=person)(objectClass=user))"
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
        r"(memberOf:1.2.840.113556.1.4.1941:=cn=AI \28pilot\29,ou=groups,dc=corp,dc=example)"
        "(!(memberOf:1.2.840.113556.1.4.1941:=cn=contractors,dc=corp,dc=example)))")
    assert plan.client_groups == ()
    assert set(plan.attributes) == {"userprincipalname", "objectguid", "useraccountcontrol"}
    direct = search_plan(config.model_copy(update={"nested_groups": False}))
    assert "(memberOf=cn=AI \\28pilot\\29,ou=groups,dc=corp,dc=example)" in direct.filter


def test_openldap_preset_expands_groups_client_side_and_skips_pseudo_attributes() -> None:
    config = LdapSourceConfig.model_validate({
        "name": "o", "type": "ldap", "url": "ldaps://ldap.corp.example:636",
        "base_dn": ["ou=a,dc=x", "ou=b,dc=x"], "end_user": "{mail}",
        "tags": {"ou": "{dn_ou}"}, "groups": ["cn=g,dc=x"], "include_disabled": True})
    plan = search_plan(config)
    assert plan.filter == "(objectClass=inetOrgPerson)"
    assert plan.client_groups == ("cn=g,dc=x",)
    assert plan.attributes == ("mail",)
    assert config.base_dns == ["ou=a,dc=x", "ou=b,dc=x"]


def _ldap(**extra: object) -> dict[str, object]:
    return {"name": "c", "type": "ldap", "base_dn": "dc=x", "end_user": "{mail}", **extra}


@pytest.mark.parametrize(("extra", "message"), [
    ({"url": "ldap://dc1:389"}, "plain LDAP"),
    ({"url": ["ldaps://dc1", "ldap://dc2"]}, "plain LDAP"),
    ({"url": "ldaps://dc1", "start_tls": True}, "already encrypted"),
    ({"url": "ldaps://dc1/dc=x"}, "put the base DN in base_dn"),
    ({"url": "http://dc1"}, "expected ldaps://"),
    ({"url": "ldaps://dc1", "bind_dn": "cn=s"}, "bind_password or bind_password_file"),
    ({"url": "ldaps://dc1", "bind_dn": "cn=s", "bind_password": "a",
      "bind_password_file": "/p"}, "not both"),
    ({"url": "ldaps://dc1", "filter": "(&(uid=a)"}, "unbalanced"),
    ({"url": "ldaps://dc1", "timeout": "0s"}, "greater than zero"),
])
def test_config_refuses(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LdapSourceConfig.model_validate(_ldap(**extra))


def test_plaintext_is_allowed_only_when_asked() -> None:
    for extra in ({"start_tls": True}, {"allow_plaintext": True}):
        config = LdapSourceConfig.model_validate(_ldap(url="ldap://dc1:389/", **extra))
        assert config.urls == ["ldap://dc1:389"]  # trailing slash trips ldap3


def test_bare_filter_gets_parentheses() -> None:
    config = LdapSourceConfig.model_validate(_ldap(url="ldaps://dc1", filter="uid=a*"))
    assert config.filter == "(uid=a*)"
    assert config.user_filter == "(&(objectClass=inetOrgPerson)(uid=a*))"


def test_a_custom_filter_is_anded_with_the_presets_object_classes() -> None:
    ad = LdapSourceConfig.model_validate(_ldap(url="ldaps://dc1", preset="active-directory",
                                               filter="(mail=*)"))
    assert ad.user_filter == "(&(objectCategory=person)(objectClass=user)(mail=*))"


def test_config_error_names_the_source_key() -> None:
    text = """
nebuly: {api_key: k}
sources:
  - {name: corp, type: ldap, url: "ldap://dc1", base_dn: "dc=x", end_user: "{mail}"}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert any(p.startswith("sources[0]") and "plain LDAP" in p for p in info.value.problems)


def test_result_codes_that_truncate_are_incomplete() -> None:
    for code in (3, 4, 10, 11):
        assert failure_for_result(code, "", "").kind == "incomplete"
    assert failure_for_result(32, "", "").kind == "no-such-object"
    bind = failure_for_result(49, "invalidCredentials",
                              "80090308: LdapErr: DSID-0C09044E, comment: "
                              "AcceptSecurityContext error, data 775, v4563")
    assert bind.kind == "refused" and "account locked out" in bind.message
    assert ad_bind_hint("no data here") == ""


def test_backend_choice() -> None:
    assert choose_backend("ldap3") == "ldap3"
    assert choose_backend("auto") in ("ldap3", "python-ldap")


def test_loading_the_config_imports_no_ldap_library(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("nebuly: {api_key: k}\nsources:\n"
                      "  - {name: corp, type: ldap, url: 'ldaps://dc1', base_dn: 'dc=x', "
                      "end_user: '{mail}'}\n")
    code = ("import sys; from pathlib import Path; from syncd.config.model import load_config; "
            f"load_config(Path({str(config)!r})); "
            "from syncd.sources.ldap.source import LdapSource; "
            "bad = [m for m in ('ldap3', 'ldap') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
