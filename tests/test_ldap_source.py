"""The LDAP source against a real slapd, with both backends."""

from __future__ import annotations

import logging
import os
import signal
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.sources.base import Source, SourceError
from syncd.sources.ldap.source import LdapSource
from tests.conftest import CANARY_PASSWORD
from tests.conftest_ldap import (
    EMEA,
    LOCKED,
    N_EMEA,
    N_USERS,
    PILOT_DIRECT,
    PILOT_NESTED,
    AfterEachPage,
    backend_fixture,  # noqa: F401  (fixture "backend": both backends)
    corp_fixture,  # noqa: F401  (fixture "corp")
    corp_ldif,
    group_dn,
    needs_slapd,
    slapd_factory_fixture,  # noqa: F401  (fixture "slapd_factory")
    source_config,
    uid,
)
from tests.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, ldif_entry, user_ldif

pytestmark = needs_slapd

ELIGIBLE = {uid(i) for i in range(N_USERS) if i not in LOCKED} | {f"e{i}" for i in range(N_EMEA)}


def uids(source: LdapSource) -> set[str]:
    return {r.attributes["uid"] for r in source.read().records}


def read_error(source: Source) -> SourceError:
    with pytest.raises(SourceError) as info:
        source.read()
    return info.value


# --- transport --------------------------------------------------------------------


def test_start_tls_reads_everyone_past_the_size_limit(corp: Slapd, backend: str) -> None:
    # sizelimit 500 for the service account; paging (200 a page) must still get all.
    source = LdapSource(source_config(corp, backend))
    records = source.read().records
    assert {r.attributes["uid"] for r in records} == ELIGIBLE
    assert len(records) == len(ELIGIBLE)
    assert all(r.origin.startswith("uid=") for r in records)
    assert all(set(r.attributes) <= {"uid", "departmentnumber", "l"} for r in records)


def test_ldaps_with_verification(corp: Slapd, backend: str) -> None:
    config = source_config(corp, backend, url=corp.ldaps_url, start_tls=False)
    assert uids(LdapSource(config)) == ELIGIBLE


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
def test_wrong_ca_is_rejected_with_a_clear_message(corp: Slapd, backend: str,
                                                   transport: str) -> None:
    url = corp.ldaps_url if transport == "ldaps" else corp.ldap_url
    config = source_config(corp, backend, url=url, start_tls=transport == "start_tls",
                           ca_file=str(corp.tls.other_ca_file))
    message = str(read_error(LdapSource(config)))
    assert "TLS" in message and "ca_file" in message and "certificate" in message


def test_plaintext_is_used_only_when_allowed(corp: Slapd, backend: str) -> None:
    with pytest.raises(ValueError, match="plain LDAP"):
        source_config(corp, backend, start_tls=False)
    config = source_config(corp, backend, start_tls=False, allow_plaintext=True)
    assert uids(LdapSource(config)) == ELIGIBLE
    # A config built without validation is still refused before any bind.
    unchecked = config.model_construct(**{**dict(config), "allow_plaintext": False})
    assert "plain LDAP" in str(read_error(LdapSource(unchecked)))


def test_failover_to_the_next_url(corp: Slapd, backend: str, tmp_path: Path) -> None:
    dead = "ldaps://localhost:1"  # nothing listens on port 1
    config = source_config(corp, backend, url=[dead, corp.ldaps_url], start_tls=False,
                           connect_timeout="2s")
    assert uids(LdapSource(config)) == ELIGIBLE
    only_dead = source_config(corp, backend, url=[dead], start_tls=False)
    assert "no LDAP server could be reached" in str(read_error(LdapSource(only_dead)))


# --- bind and secrets --------------------------------------------------------------


def test_bind_failure_is_clear_and_never_shows_the_password(
        corp: Slapd, backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = LdapSource(source_config(corp, backend, bind_password=CANARY_PASSWORD))
    error = read_error(source)
    assert "invalid credentials" in str(error) and SERVICE_DN in str(error)
    texts = [str(error), repr(error), error.message,
             "".join(traceback.format_exception(error)), caplog.text, repr(source.config)]
    assert all(CANARY_PASSWORD not in text for text in texts)


def test_password_file_is_read_on_every_run(corp: Slapd, backend: str, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("stale-password\n")
    source = LdapSource(source_config(corp, backend, bind_password=None,
                                      bind_password_file=str(secret)))
    assert "invalid credentials" in str(read_error(source))
    secret.write_text(SERVICE_PASSWORD + "\n")  # rotated: the next read picks it up
    assert uids(source) == ELIGIBLE


# --- scope -------------------------------------------------------------------------


def test_nested_groups_with_a_cycle(corp: Slapd, backend: str) -> None:
    # ai-pilot -> pilot-sub -> ai-pilot (cycle) and -> pilot-subsub; a dangling member
    # and a locked member in pilot-subsub stay out.
    source = LdapSource(source_config(corp, backend, groups=[group_dn("ai-pilot")]))
    assert uids(source) == PILOT_NESTED
    direct = LdapSource(source_config(corp, backend, groups=[group_dn("ai-pilot")],
                                      nested_groups=False))
    assert uids(direct) == PILOT_DIRECT


def test_exclude_groups(corp: Slapd, backend: str) -> None:
    source = LdapSource(source_config(corp, backend, groups=[group_dn("ai-pilot")],
                                      exclude_groups=[group_dn("contractors")]))
    assert uids(source) == PILOT_NESTED - {uid(101), uid(201)}
    everyone = LdapSource(source_config(corp, backend, exclude_groups=[group_dn("contractors")]))
    assert uids(everyone) == ELIGIBLE - {uid(101), uid(201)}


def test_a_missing_scope_group_fails_instead_of_emptying_the_roster(
        corp: Slapd, backend: str) -> None:
    source = LdapSource(source_config(corp, backend, groups=[group_dn("ai-pliot")]))
    assert "cn=ai-pliot" in str(read_error(source))


def test_missing_base_dn_fails(corp: Slapd, backend: str) -> None:
    source = LdapSource(source_config(corp, backend, base_dn=f"ou=gone,{PEOPLE}"))
    assert "does not exist" in str(read_error(source))


def test_base_dns_and_one_level_scope(corp: Slapd, backend: str) -> None:
    both = LdapSource(source_config(corp, backend, base_dn=[EMEA, PEOPLE]))
    assert uids(both) == ELIGIBLE  # overlapping bases: each person once
    one = LdapSource(source_config(corp, backend, scope="one"))
    assert uids(one) == ELIGIBLE - {f"e{i}" for i in range(N_EMEA)}


# --- disabled accounts -------------------------------------------------------------


def test_disabled_accounts_are_excluded_whatever_the_filter(corp: Slapd, backend: str) -> None:
    source = LdapSource(source_config(corp, backend, filter="(|(uid=u0001)(uid=u0020))"))
    assert uids(source) == {"u0020"}
    everyone = LdapSource(source_config(corp, backend, include_disabled=True))
    assert uids(everyone) == ELIGIBLE | {uid(i) for i in LOCKED}


def test_custom_disabled_filter(corp: Slapd, backend: str) -> None:
    source = LdapSource(source_config(corp, backend, disabled_filter="(departmentNumber=D0)"))
    expected = {uid(i) for i in range(N_USERS) if i % 5 != 0} | {f"e{i}" for i in range(N_EMEA)}
    assert uids(source) == expected


# --- values ------------------------------------------------------------------------


def test_multi_values_and_dn_parts(corp: Slapd, backend: str) -> None:
    tags = {"department": "{departmentNumber}", "mails": "{mail}", "ou": "{dn_ou}",
            "path": "{dn_ou_path}", "domain": "{dn_domain}", "dn": "{dn}"}
    first = LdapSource(source_config(corp, backend, tags=tags, filter="(uid=u0011)"))
    (rec,) = first.read().records
    assert rec.attributes["mail"] == "u0011@corp.example"
    assert rec.attributes["departmentnumber"] == "Sales"
    assert rec.attributes["dn"] == rec.origin == f"uid=u0011,{PEOPLE}"
    assert rec.attributes["dn_ou"] == "people"
    assert rec.attributes["dn_domain"] == "corp.example"
    joined = LdapSource(source_config(corp, backend, tags=tags, filter="(uid=u0011)",
                                      multi_value="join", join_separator=", "))
    (rec,) = joined.read().records
    assert rec.attributes["mail"] == "alias-u0011@corp.example, u0011@corp.example"
    assert rec.attributes["departmentnumber"] == "Marketing, Sales"
    emea = LdapSource(source_config(corp, backend, tags=tags, filter="(uid=e1)"))
    (rec,) = emea.read().records
    assert (rec.attributes["dn_ou"], rec.attributes["dn_ou_path"]) == ("emea", "people/emea")


# --- incomplete reads -----------------------------------------------------------------


def test_a_server_that_stops_paging_at_its_size_limit_fails_the_read(
        slapd_factory: Callable[..., Slapd], backend: str) -> None:
    # slapd's own default (size.prtotal = the hard limit): paged searches stop at 500.
    server = slapd_factory(corp_ldif(), paged_total="hard")
    message = str(read_error(LdapSource(source_config(server, backend))))
    assert "size limit exceeded" in message and "no partial roster" in message


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_server_lost_after_the_first_page_fails_the_read(
        slapd_factory: Callable[..., Slapd], backend: str, how: str) -> None:
    server = slapd_factory(corp_ldif())
    pages: list[int] = []

    def after_page(count: int) -> None:
        pages.append(count)
        if len(pages) == 1:
            server.stop(kill=how == "kill")

    source = AfterEachPage(LdapSource(source_config(server, backend, page_size=50)), after_page)
    message = str(read_error(source))
    # python-ldap asks for the next page before the caller sees this one, so the
    # page in flight when the server stopped may still arrive; none after it can.
    assert pages[0] == 50 and len(pages) <= 2, pages
    assert "failed part-way" in message


def test_a_server_that_hangs_mid_read_times_out(
        slapd_factory: Callable[..., Slapd], backend: str) -> None:
    server = slapd_factory(corp_ldif())
    assert server.process is not None
    pid = server.process.pid

    stopped: list[int] = []

    def after_page(count: int) -> None:
        if not stopped:  # after the first page: alive but silent, only the timeout ends it
            stopped.append(count)
            os.kill(pid, signal.SIGSTOP)

    source = AfterEachPage(
        LdapSource(source_config(server, backend, page_size=50, timeout="1s")), after_page)
    try:
        assert "failed part-way" in str(read_error(source))
    finally:
        os.kill(pid, signal.SIGCONT)


def test_an_unfollowed_referral_fails_the_read(
        slapd_factory: Callable[..., Slapd], backend: str) -> None:
    referral = ldif_entry(f"ou=remote,{PEOPLE}", {
        "objectClass": ["referral", "extensibleObject"], "ou": "remote",
        "ref": "ldap://other.corp.example/ou=remote,dc=corp,dc=example"})
    server = slapd_factory(user_ldif("alice") + referral)
    message = str(read_error(LdapSource(source_config(server, backend))))
    assert "referral" in message and "other.corp.example" in message
    ignoring = LdapSource(source_config(server, backend, referrals="ignore"))
    assert uids(ignoring) == {"alice"}
