"""What trying syncd against a real AD (Samba) found; each test failed before its fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource
from tests.conftest import run_cli
from tests.conftest_ad import (
    ELIGIBLE,
    PILOT_NESTED,
    SERVICE_DN,
    ad_config,
    ad_yaml,
    group_dn,
    names,
    read_error,
)
from tests.conftest_ldap import (
    AfterEachPage,
    backend_fixture,  # noqa: F401  (fixture "backend")
)
from tests.samba_dc import BASE, SambaDC

TYPO = group_dn("ai-pliot")


# --- 1. a mistyped group is silently accepted with the in-chain rule -----------------


def test_a_mistyped_group_fails_the_read_naming_it(ad: SambaDC, backend: str) -> None:
    two = LdapSource(ad_config(ad, backend, groups=[group_dn("ai-pilot"), TYPO]))
    message = read_error(two)
    assert f"groups[1]: no such group {TYPO!r}" in message
    excluded = LdapSource(ad_config(ad, backend, exclude_groups=[TYPO]))
    assert f"exclude_groups[0]: no such group {TYPO!r}" in read_error(excluded)
    alone = LdapSource(ad_config(ad, backend, groups=[TYPO]))
    assert TYPO in read_error(alone)
    base = LdapSource(ad_config(ad, backend, base_dn=f"OU=Peeple,{BASE}"))
    assert f"base_dn: no such base DN 'OU=Peeple,{BASE}'" in read_error(base)


# --- 3. python-ldap printed a traceback after a referral ------------------------------


def test_python_ldap_referral_leaves_only_log_events(ad: SambaDC, tmp_path: Path,
                                                     standin: NebulyStandIn) -> None:
    config = ad_yaml(tmp_path, ad, standin.url, base_dn=BASE, backend="python-ldap")
    done = run_cli("once", "--config", str(config))
    assert done.returncode == 3
    events = [json.loads(line) for line in done.stderr.splitlines()]  # nothing but JSON
    assert any("referral" in str(e.get("error", "")) for e in events)
    assert "Exception ignored" not in done.stderr + done.stdout
    assert standin.write_calls() == 0


# --- 4. a custom filter replaced the preset's person filter ---------------------------


def test_a_custom_filter_keeps_the_presets_object_classes(ad: SambaDC, backend: str) -> None:
    # pilot-news is a mail-enabled group nested in ai-pilot: (mail=*) alone matches it.
    source = LdapSource(ad_config(ad, backend, filter="(mail=*)",
                                  groups=[group_dn("ai-pilot")]))
    assert names(source) == PILOT_NESTED
    assert "(objectCategory=person)" in source.plan.filter


# --- 5. strict X.509 (Python 3.13's default) and Samba's own certificate -------------


@pytest.fixture(name="own_cert")
def own_cert_fixture(ad: SambaDC) -> Iterator[SambaDC]:
    """The DC on the certificate Samba generated itself (no AKI, CN <host>.<realm>)."""
    ad.use_own_cert(True)
    try:
        yield ad
    finally:
        ad.use_own_cert(False)


def test_strict_x509_names_the_missing_authority_key_identifier(own_cert: SambaDC) -> None:
    strict = ad_config(own_cert, "ldap3", ca_file=str(own_cert.own_ca_file))
    message = read_error(LdapSource(strict))
    assert "Missing Authority Key Identifier" in message and "tls_strict: false" in message
    # Relaxed, the chain is accepted; verification is still on: the host name check
    # now fails (the certificate names only <host>.corp.example, not localhost).
    relaxed = ad_config(own_cert, "ldap3", ca_file=str(own_cert.own_ca_file),
                        tls_strict=False)
    message = read_error(LdapSource(relaxed))
    assert "Authority Key Identifier" not in message
    assert "Hostname mismatch" in message and "not a name in the certificate" in message
    # libldap (python-ldap) has no strict mode; it rejects the host name alike.
    pyldap = ad_config(own_cert, "python-ldap", ca_file=str(own_cert.own_ca_file))
    assert "Hostname mismatch" in read_error(LdapSource(pyldap))


# --- 6. friction ---------------------------------------------------------------------


def test_the_effective_filter_is_logged_at_read(
        ad: SambaDC, backend: str, _logs_without_secrets: list[dict[str, Any]]) -> None:
    source = LdapSource(ad_config(ad, backend, filter="(department=D1)"))
    assert len(names(source)) > 0
    (event,) = [e for e in _logs_without_secrets if e["event"] == "source.search"]
    assert event["filter"] == source.plan.filter
    assert event["filter"].startswith(
        "(&(&(objectCategory=person)(objectClass=user)(department=D1))"
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))")


def test_a_skipped_failover_server_is_logged(
        ad: SambaDC, backend: str, _logs_without_secrets: list[dict[str, Any]]) -> None:
    source = LdapSource(ad_config(ad, backend, url=["ldaps://localhost:1", ad.ldaps_url]))
    assert names(source) == ELIGIBLE
    (event,) = [e for e in _logs_without_secrets if e["event"] == "source.server_skipped"]
    assert event["url"] == "ldaps://localhost:1" and event["next_url"] == ad.ldaps_url
    assert event["reason"].startswith("connection refused")


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
def test_both_backends_name_the_same_causes(ad: SambaDC, backend: str, transport: str) -> None:
    start_tls = transport == "start_tls"
    url = ad.ldap_url if start_tls else ad.ldaps_url
    closed = ad_config(ad, backend, url=url.replace(url.rsplit(":", 1)[1], "1"),
                       start_tls=start_tls)
    assert "connection refused: nothing listens on localhost:1" in read_error(
        LdapSource(closed))
    untrusted = ad_config(ad, backend, url=url, start_tls=start_tls,
                          ca_file=str(ad.tls.other_ca_file))
    message = read_error(LdapSource(untrusted))
    assert "certificate verify failed: unable to get local issuer certificate" in message
    assert "not signed by a CA in ca_file" in message


def test_a_plain_bind_refused_for_strong_auth_says_so(ad: SambaDC, backend: str) -> None:
    plain = ad_config(ad, backend, url=ad.ldap_url, allow_plaintext=True)
    message = read_error(LdapSource(plain))
    assert "strong(er) authentication required (LDAP result 8)" in message
    assert "use ldaps:// or start_tls: true" in message
    assert "could be reached" not in message


# --- a DC that stops mid-read writes nothing --------------------------------------------


def test_a_dc_stopped_mid_read_writes_nothing(ad: SambaDC, tmp_path: Path,
                                              standin: NebulyStandIn, backend: str) -> None:
    config = load_config(ad_yaml(tmp_path, ad, standin.url, backend=backend, page_size=200))
    first = run_once(config, today=date(2026, 12, 1))
    assert first.exit_code == ExitCode.OK, first.error
    assert len(standin.users()) == len(ELIGIBLE)
    standin.reset_calls()
    before = standin.users()
    source_config = config.sources[0]
    assert isinstance(source_config, LdapSourceConfig)

    def stop_after_first_page(count: int) -> None:
        ad.stop(kill=True)

    try:
        second = run_once(config, today=date(2026, 12, 2), sources=[
            AfterEachPage(LdapSource(source_config), stop_after_first_page)])
    finally:
        ad.start()
    assert second.exit_code == ExitCode.SOURCE_FAILED
    assert second.error is not None and "failed part-way" in second.error
    assert standin.write_calls() == 0
    assert standin.users() == before


# --- 6. validate --connect ---------------------------------------------------------------


def test_validate_connect_shows_the_filter_and_the_count(
        ad: SambaDC, tmp_path: Path, standin: NebulyStandIn, backend: str) -> None:
    config = ad_yaml(tmp_path, ad, standin.url, backend=backend,
                     groups=[group_dn("ai-pilot")])
    done = run_cli("validate", "--connect", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"bound to {ad.ldaps_url} as {SERVICE_DN} (backend {backend})" in done.stdout
    assert ("filter: (&(&(objectCategory=person)(objectClass=user))"
            "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
            f"(memberOf:1.2.840.113556.1.4.1941:={group_dn('ai-pilot')}))") in done.stdout
    assert f"would read {len(PILOT_NESTED)} people" in done.stdout
    assert standin.calls == []  # Nebuly is never contacted
    # Without --connect, validate does not touch the directory: a stopped DC is fine.
    plain = run_cli("validate", "--config", str(ad_yaml(
        tmp_path, ad, standin.url, url="ldaps://localhost:1")))
    assert plain.returncode == 0 and "Reading the sources" not in plain.stdout


def test_validate_connect_names_each_problem_in_one_line(
        ad: SambaDC, tmp_path: Path, standin: NebulyStandIn) -> None:
    def problems(expected_exit: int, **source: Any) -> list[str]:
        done = run_cli("validate", "--connect", "--config",
                       str(ad_yaml(tmp_path, ad, standin.url, **source)))
        assert done.returncode == expected_exit, done.stderr
        return [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]

    (typo,) = problems(3, groups=[group_dn("ai-pilot"), TYPO])
    assert typo.startswith(f"sources[0].groups[1]: no such group {TYPO!r}")
    (no_ca,) = problems(2, ca_file=str(tmp_path / "missing-ca.pem"))
    # One line naming the field and the file (config errors end with their line number).
    assert no_ca.startswith(f"sources[0].ca_file: {tmp_path / 'missing-ca.pem'} does not exist")
    (untrusted,) = problems(3, ca_file=str(ad.tls.other_ca_file))
    assert untrusted.startswith(
        f"sources[0].url: no LDAP server could be reached: {ad.ldaps_url}: TLS: certificate "
        "verify failed: unable to get local issuer certificate: the certificate is not "
        "signed by a CA in ca_file")
    (bad_password,) = problems(3, bind_password="wrong-password")
    assert bad_password.startswith(f"sources[0].bind_dn: bind as {SERVICE_DN!r}")
    assert "[Active Directory: wrong password]" in bad_password
    assert standin.calls == []
