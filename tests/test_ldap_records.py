"""Entries -> records in the LDAP source, over an in-memory connection (no server).

The per-entry path lowers and classifies each attribute name once per read; these
check that what it builds is what the rules say, whatever the server's spelling.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Sequence
from typing import Any, Literal

import pytest

from syncd.sources.base import NO_PROGRESS, SourceError
from syncd.sources.ldap.backends import Attributes, LdapFailure, Page, failure_for_result
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.ldap.source import LdapSource

GUID = uuid.UUID("c8e2a5b1-0d1e-4f3a-9b2c-1234567890ab")


class PagesConnection:
    """A Connection that serves fixed pages, then optionally fails."""

    def __init__(self, pages: list[list[tuple[str, Attributes]]],
                 fail_after: LdapFailure | None = None) -> None:
        self.pages = pages
        self.fail_after = fail_after
        self.sizes: list[int] = []

    def bind(self, dn: str | None, password: str | None) -> None:
        pass

    def search(self, base: str, scope: Literal["subtree", "one"], filter: str,
               attributes: Sequence[str], page_size: int) -> Generator[Page, None, None]:
        self.sizes.append(page_size)
        for entries in self.pages:
            yield Page(entries, [])
        if self.fail_after is not None:
            raise self.fail_after

    def read(self, dn: str, attributes: Sequence[str]) -> Attributes | None:
        return {}

    def close(self) -> None:
        pass


def ldap_source(**extra: Any) -> LdapSource:
    config = LdapSourceConfig.model_validate({
        "name": "dir", "type": "ldap", "url": "ldaps://dc.corp.example", "base_dn": "dc=corp",
        "end_user": "{mail}", "tags": {"dept": "{departmentNumber}", "guid": "{objectGUID}",
                                      "groups": "{memberOf}"}, **extra})
    return LdapSource(config)


def records(source: LdapSource, conn: PagesConnection) -> dict[str, dict[str, str]]:
    entries = source._search(conn, NO_PROGRESS)
    return {key: dict(rec.attributes) for key, rec in entries.items()}


def test_names_in_any_spelling_become_lower_case_values_by_their_rules() -> None:
    source = ldap_source(multi_value="join")
    conn = PagesConnection([[
        ("CN=Ann,DC=corp", {"MAIL": [b"ann@x"], "departmentNumber": [b"D1"],
                            "objectGUID": [GUID.bytes_le], "memberOf": [b"g2", b"g1"],
                            "cn": [b"unused"]}),
        ("CN=Bob,DC=corp", {"mail": [b"bob@x"], "DepartmentNumber": [b"\xff"],
                            "memberof": []}),
    ]])
    assert records(source, conn) == {
        "cn=ann,dc=corp": {"mail": "ann@x", "departmentnumber": "D1", "objectguid": str(GUID),
                           "memberof": "g1;g2"},
        "cn=bob,dc=corp": {"mail": "bob@x", "departmentnumber": "ff"},  # not UTF-8: hex
    }


@pytest.mark.parametrize(("preset", "attribute", "value"), [
    ("active-directory", "userAccountControl", b"514"),  # ACCOUNTDISABLE (2) set
    ("openldap", "pwdAccountLockedTime", b"20260101000000Z"),
])
def test_a_disabled_account_the_server_returned_is_left_out(
        preset: str, attribute: str, value: bytes) -> None:
    source = ldap_source(preset=preset)
    conn = PagesConnection([[
        ("cn=off,dc=corp", {"mail": [b"off@x"], attribute: [value]}),
        ("cn=on,dc=corp", {"mail": [b"on@x"], "userAccountControl": [b"512"]}),
    ]])
    assert list(records(source, conn)) == ["cn=on,dc=corp"]


def test_a_ranged_attribute_fails_the_read_naming_it() -> None:
    conn = PagesConnection([[("cn=ann,dc=corp", {"mail": [b"a@x"],
                                                 "memberOf;range=0-1499": [b"g"]})]])
    with pytest.raises(SourceError, match=r"memberOf;range=0-1499 in ranges"):
        records(ldap_source(), conn)


def test_an_admin_limit_after_entries_arrived_is_a_truncated_read_not_a_page_size() -> None:
    conn = PagesConnection([[("cn=ann,dc=corp", {"mail": [b"a@x"]})]],
                           fail_after=failure_for_result(11, "adminLimitExceeded", ""))
    with pytest.raises(SourceError, match="stopped before the end"):
        records(ldap_source(), conn)
    assert conn.sizes == [1000]  # not asked again with smaller pages


def test_repeated_values_are_shared_and_unique_ones_still_right_past_the_memo() -> None:
    # Departments repeat: one string for everyone in them. Mail is unique per
    # person: remembered only up to a bound, and right for everyone after it.
    people = [(f"cn=p{i},dc=corp", {"mail": [f"p{i}@x".encode()],
                                    "departmentNumber": [f"D{i % 3}".encode()]})
              for i in range(6000)]
    built = ldap_source()._search(PagesConnection([people[:3000], people[3000:]]), NO_PROGRESS)
    values = [built[f"cn=p{i},dc=corp"].attributes for i in range(6000)]
    assert [v["mail"] for v in values] == [f"p{i}@x" for i in range(6000)]
    assert [v["departmentnumber"] for v in values] == [f"D{i % 3}" for i in range(6000)]
    assert values[5999]["departmentnumber"] is values[2]["departmentnumber"]
