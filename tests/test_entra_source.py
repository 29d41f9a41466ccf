"""The Entra source against the Graph stand-in: credentials, paging, groups, filters, $select."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from standins.entra.data import user_id
from standins.entra.tls import make_tls
from syncd.sources.base import SourceError, SourceRead
from syncd.sources.entra.source import EntraSource
from tests.conftest_entra import (
    CERT_PASSWORD,
    CONTRACT,
    ENG,
    N_USERS,
    SALES,
    Entra,
    entra_server,
    graph,
    is_disabled,
    is_guest,
)

__all__ = ["entra_server", "graph"]  # fixtures used by name


def read(entra: Entra, **overrides: object) -> SourceRead:
    return EntraSource(entra.config(**overrides)).read()


def upns(result: SourceRead) -> set[str]:
    return {r.attributes["userprincipalname"] for r in result.records}


def members(indexes: range | list[int]) -> set[str]:
    return {f"user{i}@contoso.example" for i in indexes
            if not is_disabled(i) and not is_guest(i)}


def test_client_secret_reads_every_enabled_member(graph: Entra) -> None:
    result = read(graph)
    assert upns(result) == members(range(N_USERS))
    assert not result.problems
    first = next(r for r in result.records if r.attributes["id"] == user_id(0))
    assert first.attributes == {
        "id": user_id(0), "accountenabled": "true", "usertype": "Member",
        "userprincipalname": "user0@contoso.example", "department": "Engineering",
        "country": "FR", "jobtitle": "Engineer",
    }
    assert first.origin == f"user0@contoso.example (id {user_id(0)})"
    standin = graph.standin
    assert standin.counters["tokens"] == 1
    assert standin.token_scopes == ["https://graph.microsoft.com/.default"]


def test_certificate_credential(graph: Entra) -> None:
    result = read(graph, certificate_file=str(graph.certificate_file))
    assert upns(result) == members(range(N_USERS))
    assert graph.standin.counters["certificate"] == 1


def test_password_protected_certificate_from_a_file(graph: Entra, tmp_path: Path) -> None:
    password_file = tmp_path / "cert-password"
    password_file.write_text(CERT_PASSWORD + "\n", encoding="utf-8")
    result = read(graph, certificate_file=str(graph.encrypted_certificate_file),
                  certificate_password_file=str(password_file))
    assert len(result.records) == len(members(range(N_USERS)))
    assert graph.standin.counters["certificate"] == 1


def test_wrong_certificate_password_is_a_clear_error(graph: Entra) -> None:
    with pytest.raises(SourceError, match="cannot set up the credential") as caught:
        read(graph, certificate_file=str(graph.encrypted_certificate_file),
             certificate_password="not-the-password")
    assert "not-the-password" not in str(caught.value)
    assert graph.standin.counters["token_requests"] == 0


def test_workload_identity_token_file(graph: Entra) -> None:
    result = read(graph, workload_identity=True, token_file=str(graph.token_file))
    assert len(result.records) == len(members(range(N_USERS)))
    assert graph.standin.counters["federated"] == 1


def test_managed_identity(graph: Entra, monkeypatch: pytest.MonkeyPatch) -> None:
    # App Service style managed identity: azure-identity finds the endpoint only
    # in these variables (there is no parameter for it).
    monkeypatch.setenv("IDENTITY_ENDPOINT", graph.standin.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", graph.standin.identity.msi_header)
    config = graph.config(managed_identity=True, tenant_id=None, client_id=None)
    result = EntraSource(config).read()
    assert len(result.records) == len(members(range(N_USERS)))
    assert graph.standin.counters["msi_requests"] == 1
    assert graph.standin.token_scopes == ["https://graph.microsoft.com"]


def test_graph_over_https_with_the_test_ca(graph: Entra) -> None:
    result = read(graph, graph_url=graph.standin.graph_https_url)
    assert len(result.records) == len(members(range(N_USERS)))


def test_untrusted_server_certificate_is_a_source_error(graph: Entra, tmp_path: Path) -> None:
    other = make_tls(tmp_path / "other-ca")
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        read(graph, ca_file=str(other.ca_file), graph_url=graph.standin.graph_https_url)


def test_unreadable_ca_file_is_a_source_error(graph: Entra, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="ca_file"):
        read(graph, ca_file=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize(("page_size", "pages"), [(999, 3), (100, 25)])
def test_pages_to_the_end(graph: Entra, page_size: int, pages: int) -> None:
    result = read(graph, page_size=page_size, include_disabled=True, include_guests=True)
    assert len(result.records) == N_USERS
    assert len({r.attributes["id"] for r in result.records}) == N_USERS
    seen = graph.standin.seen
    assert len(seen) == pages == graph.standin.counters["pages"]
    assert seen[0].query["$top"] == str(page_size)
    assert "$skiptoken" not in seen[0].query
    assert all("$skiptoken" in s.query for s in seen[1:])


def test_disabled_accounts_and_guests_are_left_out_by_default(graph: Entra) -> None:
    result = read(graph)
    assert graph.standin.seen[0].query["$filter"] == "accountEnabled eq true"
    all_upns = upns(result)
    assert "user49@contoso.example" not in all_upns  # disabled
    assert not any("#EXT#" in u for u in all_upns)  # guests


def test_include_disabled_and_guests(graph: Entra) -> None:
    result = read(graph, include_disabled=True)
    assert "$filter" not in graph.standin.seen[0].query
    assert "user49@contoso.example" in upns(result)
    assert not any("#EXT#" in u for u in upns(result))
    with_guests = read(graph, include_guests=True)
    assert "guest39_ext.example#EXT#@contoso.example" in upns(with_guests)
    assert "user49@contoso.example" not in upns(with_guests)


def test_group_scope_includes_nested_members(graph: Entra) -> None:
    result = read(graph, groups=[ENG])
    # eng -> eng-sub -> eng-sub2 -> eng (a cycle): users 0-159, each once.
    assert upns(result) == members(range(160))
    assert len(result.records) == len(members(range(160)))
    paths = {s.path for s in graph.standin.seen}
    assert paths == {f"/v1.0/groups/{ENG}/transitiveMembers/graph.user"}


def test_union_of_groups_is_deduplicated(graph: Entra) -> None:
    result = read(graph, groups=[SALES, ENG])
    assert upns(result) == members(range(200))
    assert len(result.records) == len(members(range(200)))


def test_exclude_groups(graph: Entra) -> None:
    result = read(graph, groups=[ENG], exclude_groups=[CONTRACT])
    assert upns(result) == members(range(10, 160))
    everyone = read(graph, exclude_groups=[CONTRACT])
    assert upns(everyone) == members(range(10, N_USERS))
    exclusion = [s for s in graph.standin.seen if CONTRACT in s.path]
    assert exclusion and exclusion[0].query["$select"] == "id"


def test_the_read_event_counts_each_excluded_person_once(
        graph: Entra, _logs_without_secrets: list[dict[str, Any]]) -> None:
    # CONTRACT is users 0-9; listing it twice must not count them twice.
    read(graph, exclude_groups=[CONTRACT, CONTRACT])
    events = [e for e in _logs_without_secrets if e["event"] == "entra_read"]
    assert events[-1]["excluded_by_group"] == len(members(range(10)))


def test_unknown_group_is_a_source_error(graph: Entra) -> None:
    with pytest.raises(SourceError, match="group does not exist") as caught:
        read(graph, groups=["no-such-group"])
    assert "members of group no-such-group" in caught.value.message


def test_select_is_derived_from_the_templates(graph: Entra) -> None:
    result = read(graph, end_user="{Mail}", tags={
        "cost": "{costCenter}", "badge": "{extension_abc123_badge}",
        "dept": {"template": "{DEPARTMENT}", "transform": "upper"},
    })
    selected = graph.standin.seen[0].query["$select"].split(",")
    assert selected == ["id", "accountEnabled", "userType", "userPrincipalName",
                        "employeeOrgData", "department", "extension_abc123_badge", "mail"]
    attributes = next(r.attributes for r in result.records if r.attributes["id"] == user_id(3))
    assert attributes["costcenter"] == "CC3" and attributes["division"] == "Ops"
    assert attributes["extension_abc123_badge"] == "B3"
    assert attributes["mail"] == "user3@contoso.example"


def test_unknown_property_is_a_clear_source_error(graph: Entra) -> None:
    with pytest.raises(SourceError, match="Could not find a property named 'nosuchthing'"):
        read(graph, tags={"x": "{nosuchthing}"})


def test_records_map_through_the_templates(graph: Entra) -> None:
    from syncd.core.mapping import SourceMapper

    config = graph.config(groups=[SALES])
    mapped = SourceMapper(config).map(EntraSource(config).read().records)
    assert not mapped.problems
    by_id = {u.end_user: u for u in mapped.users}
    assert by_id["user140@contoso.example"].tags == {
        "department": "Marketing", "region": "US", "role": "Engineer"}


def test_constructing_the_source_does_no_io(graph: Entra) -> None:
    EntraSource(graph.config())
    assert graph.standin.counters["graph"] == 0 and graph.standin.counters["token_requests"] == 0
