"""Fixtures for the LDAP source tests: real slapd servers and source configs.

Test modules import the fixture functions (`corp_fixture`, ...); pytest finds them
in the module namespace under their `name=` (corp, slapd_factory, backend), so a
test's parameter does not shadow the import. (Or list this module in the root
conftest's pytest_plugins.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syncd.sources.base import NO_PROGRESS, ReadProgress, Source, SourceRead
from syncd.sources.ldap.backends import python_ldap_available
from syncd.sources.ldap.config import LdapSourceConfig
from tests.slapd import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    group_ldif,
    ldif_entry,
    slapd_available,
    user_ldif,
)


@dataclass(frozen=True)
class AfterEachPage:
    """A source whose read runs `hook(entries)` after each page the source reports,
    on top of the run's own progress: how a test fails a server mid-read."""

    source: Source
    hook: Callable[[int], None]

    @property
    def name(self) -> str:
        return self.source.name

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        return self.source.read(_Both(progress, self.hook))


@dataclass(frozen=True)
class _Both:
    progress: ReadProgress
    hook: Callable[[int], None]

    def page(self, records: int) -> None:
        self.progress.page(records)
        self.hook(records)


needs_slapd = pytest.mark.skipif(not slapd_available(), reason="slapd/ldap-utils not installed")

BACKENDS = [
    "ldap3",
    pytest.param("python-ldap", marks=pytest.mark.skipif(
        not python_ldap_available(), reason="python-ldap not installed")),
]

# The standard directory ("corp"), small enough to build in about a second.
N_USERS = 1200
LOCKED = frozenset(range(10))  # u0000..u0009 carry pwdAccountLockedTime
EMEA = f"ou=emea,{PEOPLE}"
N_EMEA = 5


def uid(i: int) -> str:
    return f"u{i:04d}"


def user_dn(i: int) -> str:
    return f"uid={uid(i)},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def corp_ldif() -> str:
    parts = []
    for i in range(N_USERS):
        extra: dict[str, Any] = {"departmentNumber": f"D{i % 5}", "l": ["Paris", "Berlin"][i % 2]}
        if i == 11:  # multi-valued: two mails, two departments
            extra["mail"] = [f"{uid(i)}@corp.example", f"alias-{uid(i)}@corp.example"]
            extra["departmentNumber"] = ["Sales", "Marketing"]
        parts.append(user_ldif(uid(i), locked=i in LOCKED, **extra))
    parts.append(ldif_entry(EMEA, {"objectClass": "organizationalUnit", "ou": "emea"}))
    parts += [user_ldif(f"e{i}", ou=EMEA, departmentNumber="EMEA") for i in range(N_EMEA)]
    # ai-pilot -> pilot-sub -> pilot-subsub, and pilot-sub -> ai-pilot (a cycle).
    parts.append(group_ldif("ai-pilot", [*(user_dn(i) for i in range(100, 105)),
                                         group_dn("pilot-sub")]))
    parts.append(group_ldif("pilot-sub", [*(user_dn(i) for i in range(200, 203)),
                                          group_dn("ai-pilot"), group_dn("pilot-subsub")]))
    parts.append(group_ldif("pilot-subsub", [
        # Spelled differently on purpose: DNs compare case- and space-insensitively.
        "UID=u0300, OU=People, DC=corp, DC=example",
        f"uid=ghost,{PEOPLE}",  # dangling member
        user_dn(5),  # locked: stays out
    ]))
    parts.append(group_ldif("contractors", [user_dn(101), user_dn(201)]))
    return "".join(parts)


PILOT_DIRECT = {uid(i) for i in range(100, 105)}
PILOT_NESTED = PILOT_DIRECT | {uid(i) for i in range(200, 203)} | {uid(300)}


def make_slapd(directory: Path, ldif: str = "", **options: Any) -> Slapd:
    server = Slapd(directory, **options)
    if ldif:
        server.slapadd(ldif)
    server.start()
    return server


@pytest.fixture(scope="session", name="corp")
def corp_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The shared read-only directory (sizelimit 500, paging allowed past it)."""
    if not slapd_available():
        pytest.skip("slapd/ldap-utils not installed")
    server = make_slapd(tmp_path_factory.mktemp("corp-slapd"), corp_ldif())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="slapd_factory")
def slapd_factory_fixture(tmp_path: Path) -> Iterator[Any]:
    """make(ldif, **Slapd options) -> a started private server, stopped after the test."""
    if not slapd_available():
        pytest.skip("slapd/ldap-utils not installed")
    servers: list[Slapd] = []

    def make(ldif: str = "", **options: Any) -> Slapd:
        server = make_slapd(tmp_path / f"slapd{len(servers)}", ldif, **options)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(params=BACKENDS, name="backend")
def backend_fixture(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def source_config(server: Slapd, backend: str = "ldap3", **overrides: Any) -> LdapSourceConfig:
    """A valid config for `server` over StartTLS with the test CA; overrides win."""
    data: dict[str, Any] = {
        "name": "corp", "type": "ldap", "url": server.ldap_url, "start_tls": True,
        "ca_file": str(server.tls.ca_file), "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD, "base_dn": PEOPLE, "backend": backend,
        "end_user": "{uid}", "tags": {"department": "{departmentNumber}", "region": "{l}"},
        "page_size": 200, "connect_timeout": "3s", "timeout": "10s",
    }
    data.update(overrides)
    return LdapSourceConfig.model_validate(data)
