"""Page size: 1000 by default, and a server that refuses a size is asked again with less.

OpenLDAP refuses a page above its `size.pr` limit with adminLimitExceeded
("illegal pagedResults page size") before sending any entry; the read must
still return everyone, in smaller pages, with one warning naming the size used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from syncd.sources.base import SourceError
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource
from tests.conftest_ldap import (
    LOCKED,
    N_EMEA,
    N_USERS,
    AfterEachPage,
    backend_fixture,  # noqa: F401  (fixture "backend": both backends)
    corp_ldif,
    needs_slapd,
    slapd_factory_fixture,  # noqa: F401  (fixture "slapd_factory")
    source_config,
    uid,
)
from tests.slapd import Slapd

ELIGIBLE = {uid(i) for i in range(N_USERS) if i not in LOCKED} | {f"e{i}" for i in range(N_EMEA)}


def default_page_config(server: Slapd, backend: str, **overrides: Any) -> LdapSourceConfig:
    """source_config without its page_size: the default applies."""
    data = source_config(server, backend, **overrides).model_dump(exclude={"page_size"})
    if "page_size" in overrides:
        data["page_size"] = overrides["page_size"]
    return LdapSourceConfig.model_validate(data)


def page_sizes(source: LdapSource) -> tuple[set[str], list[int]]:
    """The uids read, and the number of entries in each page (as the read reports them)."""
    sizes: list[int] = []
    uids = {r.attributes["uid"] for r in AfterEachPage(source, sizes.append).read().records}
    return uids, sizes


def reduced(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "source.page_size_reduced"]


def test_the_default_page_size_is_active_directorys_max_page_size() -> None:
    config = LdapSourceConfig.model_validate({
        "name": "d", "type": "ldap", "url": "ldaps://dc.corp.example", "base_dn": "dc=corp",
        "end_user": "{mail}"})
    assert config.page_size == 1000


@needs_slapd
def test_a_server_that_accepts_the_default_reads_in_pages_of_1000(
        slapd_factory: Callable[..., Slapd], backend: str,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    server = slapd_factory(corp_ldif())
    uids, sizes = page_sizes(LdapSource(default_page_config(server, backend)))
    assert uids == ELIGIBLE
    assert sizes[0] == 1000 and len(sizes) == 2, sizes
    assert reduced(_logs_without_secrets) == []


@needs_slapd
def test_a_refused_default_page_size_is_retried_smaller_and_reads_everyone(
        slapd_factory: Callable[..., Slapd], backend: str,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    server = slapd_factory(corp_ldif(), page_limit=300)
    uids, sizes = page_sizes(LdapSource(default_page_config(server, backend)))
    assert uids == ELIGIBLE
    # 1000 and 500 refused; 250 accepted (slapd counts locked entries out of the page).
    assert max(sizes) == 250 and len(sizes) >= 5, sizes
    (event,) = reduced(_logs_without_secrets)
    assert (event["page_size"], event["page_size_used"]) == (1000, 250)
    assert event["log_level"] == "warning" and "page_size: 250" in event["hint"]


@needs_slapd
def test_an_explicit_page_size_the_server_refuses_is_retried_too(
        slapd_factory: Callable[..., Slapd], backend: str,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    # Smaller pages return the same people, so failing the sync would help nobody;
    # the warning tells the admin which size the server takes.
    server = slapd_factory(corp_ldif(), page_limit=300)
    uids, sizes = page_sizes(LdapSource(source_config(server, backend, page_size=400)))
    assert uids == ELIGIBLE and max(sizes) == 200
    (event,) = reduced(_logs_without_secrets)
    assert (event["page_size"], event["page_size_used"]) == (400, 200)


@needs_slapd
def test_the_size_found_for_one_base_dn_is_kept_for_the_next(
        slapd_factory: Callable[..., Slapd], backend: str,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    server = slapd_factory(corp_ldif(), page_limit=300)
    config = default_page_config(server, backend, scope="one",
                                 base_dn=["ou=people,dc=corp,dc=example",
                                          "ou=emea,ou=people,dc=corp,dc=example"])
    uids, sizes = page_sizes(LdapSource(config))
    assert uids == ELIGIBLE and max(sizes) == 250
    refused = [e for e in _logs_without_secrets if e["event"] == "source.page_size_refused"]
    assert [e["page_size"] for e in refused] == [1000, 500]  # none for the second base DN
    assert len(reduced(_logs_without_secrets)) == 1


@needs_slapd
def test_a_server_that_refuses_paging_altogether_fails_with_its_reason(
        slapd_factory: Callable[..., Slapd], backend: str) -> None:
    server = slapd_factory(corp_ldif(), paged_total="disabled")
    with pytest.raises(SourceError) as info:
        LdapSource(default_page_config(server, backend)).read()
    message = str(info.value)
    assert "pagedResults control not allowed" in message and "no partial roster" in message
