"""The LDAP source against a real Active Directory (Samba AD DC), with both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource
from tests.conftest_ad import (
    BIG,
    DISABLED,
    ELIGIBLE,
    LEAVES,
    MAX_VAL_RANGE,
    N_USERS,
    PEOPLE,
    PILOT_DIRECT,
    PILOT_NESTED,
    SERVICE_DN,
    SERVICE_PASSWORD,
    ad_config,
    group_dn,
    names,
    read_error,
    sam,
)
from tests.conftest_ldap import (
    AfterEachPage,
    backend_fixture,  # noqa: F401  (fixture "backend")
)
from tests.samba_dc import BASE, SambaDC

# --- the preset ----------------------------------------------------------------------


def test_ad_preset_reads_enabled_people_in_nested_ous(ad: SambaDC, backend: str) -> None:
    # Under People: 1,650 users in five nested OUs (10 disabled), a computer account
    # (objectClass user too) and a contact (objectCategory person too).
    records = LdapSource(ad_config(ad, backend)).read().records
    assert {r.attributes["samaccountname"] for r in records} == ELIGIBLE
    assert len(records) == len(ELIGIBLE)
    by_name = {r.attributes["samaccountname"]: r for r in records}
    assert by_name[sam(11)].attributes == {"samaccountname": sam(11), "department": "D4",
                                           "l": "Berlin"}
    assert by_name[sam(11)].origin == f"CN=User 0011,{LEAVES[1]}"


def test_disabled_accounts_follow_user_account_control(ad: SambaDC, backend: str) -> None:
    everyone = LdapSource(ad_config(ad, backend, include_disabled=True))
    assert names(everyone) == ELIGIBLE | {sam(i) for i in DISABLED}
    # Your own rule for leavers replaces the userAccountControl bit.
    own_rule = LdapSource(ad_config(ad, backend, disabled_filter="(department=D3)"))
    assert names(own_rule) == {sam(i) for i in range(N_USERS) if i % 7 != 3}


def test_object_guid_and_sid_as_ids(ad: SambaDC, backend: str) -> None:
    # Compared with Samba's own rendering (samba.ndr), read back by the fill script.
    config = ad_config(ad, backend, end_user="{objectGUID}",
                       tags={"sid": "{objectSid}", "name": "{sAMAccountName}"},
                       filter="(sAMAccountName=u00*)")
    records = LdapSource(config).read().records
    assert len(records) == 100 - len(DISABLED)
    for rec in records:
        guid, sid = ad.ids[rec.attributes["samaccountname"]]
        assert (rec.attributes["objectguid"], rec.attributes["objectsid"]) == (guid, sid)


def test_paging_past_a_thousand(ad: SambaDC, backend: str) -> None:
    # AD serves at most MaxPageSize (1000) entries a page; 1,640 people take two.
    pages: list[int] = []
    source = AfterEachPage(LdapSource(ad_config(ad, backend, page_size=1000)), pages.append)
    assert names(source) == ELIGIBLE
    assert pages == [1000, len(ELIGIBLE) - 1000]


# --- group scope ----------------------------------------------------------------------


@pytest.mark.parametrize("lookup", ["in-chain", "member"])
def test_nested_groups(ad: SambaDC, backend: str, lookup: str) -> None:
    # ai-pilot -> pilot-sub -> pilot-subsub (with a disabled member), and -> pilot-news
    # (a mail-enabled group: its member counts, the group itself is no person).
    pilot = [group_dn("ai-pilot")]
    source = LdapSource(ad_config(ad, backend, groups=pilot, group_lookup=lookup))
    assert names(source) == PILOT_NESTED
    direct = LdapSource(ad_config(ad, backend, groups=pilot, group_lookup=lookup,
                                  nested_groups=False))
    assert names(direct) == PILOT_DIRECT
    without = LdapSource(ad_config(ad, backend, groups=pilot, group_lookup=lookup,
                                   exclude_groups=[group_dn("contractors")]))
    assert names(without) == PILOT_NESTED - {sam(101), sam(201)}


def test_the_preset_is_the_default_lookup(ad: SambaDC) -> None:
    config = ad_config(ad, groups=[group_dn("ai-pilot")])
    assert config.effective_group_lookup == "in-chain"
    assert "memberOf:1.2.840.113556.1.4.1941:=" in LdapSource(config).plan.filter


# --- transport ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
def test_tls_with_verification(ad: SambaDC, backend: str, transport: str) -> None:
    url = ad.ldaps_url if transport == "ldaps" else ad.ldap_url
    config = ad_config(ad, backend, url=url, start_tls=transport == "start_tls",
                       groups=[group_dn("ai-pilot")])
    assert names(LdapSource(config)) == PILOT_NESTED
    untrusted = ad_config(ad, backend, url=url, start_tls=transport == "start_tls",
                          ca_file=str(ad.tls.other_ca_file))
    assert "certificate" in read_error(LdapSource(untrusted))


def test_a_referral_from_the_domain_root_fails_unless_ignored(ad: SambaDC,
                                                             backend: str) -> None:
    # The domain root holds the Configuration and DNS partitions: continuation
    # references, which syncd does not follow.
    message = read_error(LdapSource(ad_config(ad, backend, base_dn=BASE)))
    assert "referral to ldaps://corp.example/" in message
    ignoring = LdapSource(ad_config(ad, backend, base_dn=BASE, referrals="ignore"))
    assert names(ignoring) >= ELIGIBLE | {"syncd", "Administrator"}


def test_a_group_larger_than_a_range_is_read_completely(
        ad: SambaDC, backend: str, _logs_without_secrets: list[dict[str, Any]]) -> None:
    # 1,600 members: more than one range of 1500, so member;range=0-1499 then 1500-*.
    source = LdapSource(ad_config(ad, backend, groups=[group_dn("big")],
                                  group_lookup="member"))
    assert names(source) == {sam(i) for i in BIG if i not in DISABLED}
    (event,) = [e for e in _logs_without_secrets if e["event"] == "source.group_read"]
    assert (event["group"], event["members"], event["requests"]) == (group_dn("big"),
                                                                     len(BIG), 2)
    nested = LdapSource(ad_config(ad, backend, groups=[group_dn("ai-pilot")],
                                  group_lookup="member"))
    assert names(nested) == PILOT_NESTED  # small groups: one request each


QUERY_POLICY = ("CN=Default Query Policy,CN=Query-Policies,CN=Directory Service,"
                f"CN=Windows NT,CN=Services,CN=Configuration,{BASE}")


def test_how_samba_cuts_member(ad: SambaDC, backend: str) -> None:
    """Samba ignores MaxValRange (100 in this DC's query policy): it cuts a ranged
    attribute only where the client asks, and a plain read returns every value."""
    conn, _ = LdapSource(ad_config(ad, backend)).open()
    try:
        plain = conn.read(group_dn("big"), ["member"])
        window = conn.read(group_dn("big"), ["member;range=0-99"])
        rest = conn.read(group_dn("big"), ["member;range=1500-*"])
        policy = conn.read(QUERY_POLICY, ["lDAPAdminLimits"])
    finally:
        conn.close()
    assert plain is not None and window is not None and rest is not None and policy
    assert f"MaxValRange={MAX_VAL_RANGE}".encode() in next(iter(policy.values()))
    assert [len(v) for v in plain.values()] == [len(BIG)]
    assert {k.lower(): len(v) for k, v in window.items()} == {"member;range=0-99": 100}
    assert {k.lower(): len(v) for k, v in rest.items()} == {"member;range=1500-*": 100}


def test_people_ou_scope_one(ad: SambaDC, backend: str) -> None:
    one = LdapSource(ad_config(ad, backend, base_dn=f"OU=EMEA,{PEOPLE}", scope="one"))
    assert names(one) == {sam(i) for i in range(2, N_USERS, 5) if i not in DISABLED}


def test_the_example_ad_config_reads_the_dc(ad: SambaDC, backend: str) -> None:
    # config/example-ad.yaml with only the site-specific values replaced.
    example = yaml.safe_load(Path("config/example-ad.yaml").read_text())["sources"][0]
    example.update(url=[ad.ldaps_url], ca_file=str(ad.tls.ca_file), bind_dn=SERVICE_DN,
                   bind_password=SERVICE_PASSWORD, base_dn=PEOPLE,
                   groups=[group_dn("ai-pilot")], backend=backend)
    records = LdapSource(LdapSourceConfig.model_validate(example)).read().records
    assert {r.attributes["userprincipalname"] for r in records} == {
        f"{name}@corp.example" for name in PILOT_NESTED}
    for rec in records:
        name = rec.attributes["userprincipalname"].split("@")[0]
        assert (rec.attributes["objectguid"], rec.attributes["objectsid"]) == ad.ids[name]
