"""The Samba AD DC the AD tests share: its population and the source configs for it.

One DC per session (it owns the standard ports). Tests that change it restore
what they changed or work on objects of their own. Without samba the fixture
fails in CI (where setup.sh installs it) and skips on a developer machine,
like the slapd tests.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.sources.base import Source, SourceError
from syncd.sources.ldap.config import LdapSourceConfig
from tests.conftest import CANARY_API_KEY
from tests.samba_dc import BASE, SambaDC, samba_available

PEOPLE = f"OU=People,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
SERVICE_DN = f"CN=syncd,OU=Service,{BASE}"
SERVICE_PASSWORD = "Svc-Pass-for-tests-1"  # a throwaway test DC
# Nested OUs; user i lives in LEAVES[i % len(LEAVES)].
LEAVES = (f"OU=Paris,OU=EMEA,{PEOPLE}", f"OU=Berlin,OU=EMEA,{PEOPLE}", f"OU=EMEA,{PEOPLE}",
          f"OU=NYC,OU=AMER,{PEOPLE}", f"OU=APAC,{PEOPLE}")
N_USERS = 1650
DISABLED = frozenset(range(10))  # userAccountControl 514
BIG = range(1600)  # members of the "big" group: more than AD's 1500 values per range
MAX_VAL_RANGE = 100  # set in the query policy; Samba ignores it (test_how_samba_cuts_member)


def sam(i: int) -> str:
    return f"u{i:04d}"


def user_dn(i: int) -> str:
    return f"CN=User {i:04d},{LEAVES[i % len(LEAVES)]}"


def group_dn(cn: str) -> str:
    return f"CN={cn},{GROUPS}"


ELIGIBLE = {sam(i) for i in range(N_USERS) if i not in DISABLED}
PILOT_DIRECT = {sam(i) for i in range(100, 105)}
PILOT_NESTED = PILOT_DIRECT | {sam(i) for i in range(200, 203)} | {sam(300), sam(400)}


def population() -> dict[str, Any]:
    """The JSON spec tests/samba_fill.py loads: OUs, users, groups, a computer, a contact."""
    ous = [PEOPLE, f"OU=EMEA,{PEOPLE}", f"OU=AMER,{PEOPLE}", *LEAVES[:2], *LEAVES[3:],
           GROUPS, f"OU=Service,{BASE}"]
    entries: list[dict[str, Any]] = [
        {"dn": dn, "objectClass": "organizationalUnit"} for dn in dict.fromkeys(ous)]
    for i in range(N_USERS):
        entries.append({
            "dn": user_dn(i), "objectClass": "user", "sAMAccountName": sam(i),
            "userPrincipalName": f"{sam(i)}@corp.example", "mail": f"{sam(i)}@corp.example",
            "givenName": "User", "sn": f"{i:04d}", "department": f"D{i % 7}",
            "l": ["Paris", "Berlin", "Brussels", "New York", "Tokyo"][i % 5],
            "employeeID": str(10000 + i),
            "userAccountControl": "514" if i in DISABLED else "512"})
    # Not people: the AD preset must leave both out although they sit under People.
    entries.append({"dn": f"CN=WS01,{PEOPLE}", "objectClass": "computer",
                    "sAMAccountName": "WS01$", "userAccountControl": "4096"})
    entries.append({"dn": f"CN=Supplier Desk,{PEOPLE}", "objectClass": "contact",
                    "mail": "desk@supplier.example"})

    def group(cn: str, members: list[str], **extra: str) -> dict[str, Any]:
        return {"dn": group_dn(cn), "objectClass": "group", "sAMAccountName": cn,
                "member": members, **extra}

    # A group is added after the groups it contains (member values must resolve).
    entries += [
        group("pilot-subsub", [user_dn(300), user_dn(5)]),  # u0005 is disabled
        # A mail-enabled group nested in the pilot: it has mail, it is not a person.
        group("pilot-news", [user_dn(400)], mail="pilot-news@corp.example"),
        group("pilot-sub", [*(user_dn(i) for i in range(200, 203)),
                            group_dn("pilot-subsub")]),
        group("ai-pilot", [*(user_dn(i) for i in range(100, 105)), group_dn("pilot-sub"),
                           group_dn("pilot-news")]),
        group("contractors", [user_dn(101), user_dn(201)]),
        group("big", [user_dn(i) for i in BIG]),
    ]
    return {"entries": entries, "max_val_range": MAX_VAL_RANGE,
            "accounts": [{"name": "syncd", "password": SERVICE_PASSWORD, "ou": "OU=Service"}]}


@pytest.fixture(scope="session", name="ad")
def ad_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    """The shared DC: provisioned, filled and started once per session."""
    message = ""
    if not samba_available():
        message = "samba / python3-samba / ldap-utils not installed (scripts/setup.sh)"
    elif os.geteuid() != 0:
        message = "a Samba DC needs root: it listens on the privileged ports 389 and 636"
    if message:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}; the AD tests cannot run", pytrace=False)
        pytest.skip(message)
    dc = SambaDC(tmp_path_factory.mktemp("samba-dc"))
    started = time.monotonic()
    dc.provision()
    provisioned = time.monotonic()
    dc.fill(population())
    filled = time.monotonic()
    dc.start()
    # The setup figures, for the record (`pytest -s` shows them); nothing asserts them.
    print(f"\nsamba DC: provision {provisioned - started:.1f}s, fill {filled - provisioned:.1f}s"
          f" ({N_USERS} users), start {time.monotonic() - filled:.1f}s")
    try:
        yield dc
    finally:
        dc.stop()


def names(source: Source) -> set[str]:
    """The sAMAccountNames a read returns."""
    return {r.attributes["samaccountname"] for r in source.read().records}


def read_error(source: Source) -> str:
    with pytest.raises(SourceError) as info:
        source.read()
    return str(info.value)


def ad_config(dc: SambaDC, backend: str = "ldap3", **overrides: Any) -> LdapSourceConfig:
    """A valid AD-preset config for the DC over LDAPS with the suite's CA; overrides win."""
    data: dict[str, Any] = {
        "name": "ad", "type": "ldap", "preset": "active-directory", "url": dc.ldaps_url,
        "ca_file": str(dc.tls.ca_file), "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD, "base_dn": PEOPLE, "backend": backend,
        "end_user": "{sAMAccountName}", "tags": {"department": "{department}", "city": "{l}"},
        "page_size": 500, "connect_timeout": "5s", "timeout": "30s",
    }
    data.update(overrides)
    return LdapSourceConfig.model_validate(data)


def ad_yaml(tmp_path: Path, ad: SambaDC, standin_url: str, **source: Any) -> Path:
    """A whole config file for the DC (JSON is YAML); `source` keys override.

    Deactivations are capped at 10 people rather than 10%: the tests' rosters are small.
    """
    entry: dict[str, Any] = {
        "name": "ad", "type": "ldap", "preset": "active-directory", "url": ad.ldaps_url,
        "ca_file": str(ad.tls.ca_file), "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD, "base_dn": PEOPLE, "end_user": "{mail}",
        "tags": {"department": "{department}"}, "connect_timeout": "5s"}
    entry.update(source)
    path = tmp_path / "syncd.yaml"
    path.write_text(json.dumps({
        "nebuly": {"base_url": standin_url, "api_key": CANARY_API_KEY},
        "sources": [entry], "logging": {"format": "json"},
        "policy": {"max_deactivations": 10}}))
    return path
