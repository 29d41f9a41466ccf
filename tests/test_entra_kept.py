"""The Entra source kept between a daemon's runs (issue 13 item 5, issue 16) and dotted
template paths into Graph's nested properties (issue 13 item 4), against a stand-in of
its own: the session one's identity and data are shared by every Entra test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from standins.entra.data import Directory, make_users
from standins.entra.server import GraphStandin
from standins.nebuly.server import NebulyStandIn
from syncd.app.daemon import Daemon, build_schedule
from syncd.config.model import load_config
from syncd.run.kept_sources import KeptSources
from syncd.sources.base import Source, SourceRead
from syncd.sources.entra.source import EntraSource
from syncd.sources.factory import build_source
from tests.conftest import CANARY_API_KEY, roster
from tests.conftest_entra import Entra, source_yaml

N_USERS = 30
NEW_SECRET = "rotated-standin-client-secret"


def directory() -> Directory:
    users = make_users(N_USERS)
    for i, user in enumerate(users):
        user["onPremisesExtensionAttributes"] = {
            f"extensionAttribute{n}": None for n in range(1, 16)} | {
            "extensionAttribute3": f"badge-{i}"}
        user["employeeOrgData"] = {"division": f"Div{i % 3}", "costCenter": None}
        user["otherMails"] = [f"alt{i}@other.example"] if i % 2 == 0 else []
    users[5]["onPremisesExtensionAttributes"] = None  # not synced from AD
    return Directory(users)


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Entra]:
    with GraphStandin(directory(), tls_dir=tmp_path / "tls") as standin:
        unused = tmp_path / "unused"
        yield Entra(standin, unused, unused, unused)


def by_upn(read: SourceRead) -> dict[str, dict[str, str]]:
    return {r.attributes["userprincipalname"]: dict(r.attributes) for r in read.records}


# -- dotted paths ---------------------------------------------------------------

def test_templates_name_nested_properties_with_dotted_paths(tenant: Entra) -> None:
    config = tenant.config(tags={
        "badge": "{onPremisesExtensionAttributes.extensionAttribute3}",
        "division": "{employeeOrgData.division}",
        "alt": "{otherMails.0}",
    })
    users = by_upn(EntraSource(config).read())
    assert len(users) == N_USERS
    assert users["user4@contoso.example"]["onpremisesextensionattributes.extensionattribute3"] \
        == "badge-4"
    assert users["user4@contoso.example"]["employeeorgdata.division"] == "Div1"
    assert users["user4@contoso.example"]["othermails.0"] == "alt4@other.example"
    # A path that is not there is a missing attribute, as a missing property is.
    assert "othermails.0" not in users["user3@contoso.example"]
    assert "onpremisesextensionattributes.extensionattribute3" not in \
        users["user5@contoso.example"]
    # The older spellings keep working next to the paths.
    assert users["user4@contoso.example"]["extensionattribute3"] == "badge-4"
    # $select names the top-level properties (Graph refuses a path there).
    (select,) = {seen.query["$select"] for seen in tenant.standin.seen
                 if seen.path.endswith("/users")}
    assert {"onPremisesExtensionAttributes", "employeeOrgData", "otherMails"} <= set(
        select.split(","))
    assert "." not in select


def test_a_path_maps_into_tags_end_to_end(tenant: Entra) -> None:
    """Through the mapping too: the user whose path is missing has no badge tag."""
    from syncd.core.mapping import SourceMapper

    config = tenant.config(tags={"badge": "{onPremisesExtensionAttributes.extensionAttribute3}"})
    read = EntraSource(config).read()
    mapped = SourceMapper(config).map(read.records, read.problems)
    tags = {u.end_user: dict(u.tags) for u in mapped.users}
    assert tags["user7@contoso.example"] == {"badge": "badge-7"}
    assert "badge" not in tags["user5@contoso.example"]


# -- a source kept between reads --------------------------------------------------

def test_a_kept_source_reuses_its_token_until_the_secret_file_changes(
        tenant: Entra, tmp_path: Path, _logs_without_secrets: list[dict[str, Any]]) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(str(tenant.standin.identity.client_secret), encoding="utf-8")
    source = EntraSource(tenant.config(client_secret_file=str(secret_file)))
    source.keep_open()
    try:
        assert len(source.read().records) == N_USERS
        assert len(source.read().records) == N_USERS
        assert tenant.standin.counters["token_requests"] == 1

        # The secret is rotated: Entra accepts only the new one, the file is rewritten.
        tenant.standin.identity = dataclasses.replace(tenant.standin.identity,
                                                      client_secret=NEW_SECRET)
        secret_file.write_text(NEW_SECRET, encoding="utf-8")
        assert len(source.read().records) == N_USERS
        assert tenant.standin.counters["token_requests"] == 2
        assert tenant.standin.counters["token_refused"] == 0
        changed = [e for e in _logs_without_secrets if e["event"] == "source.credential_changed"]
        assert [e["source"] for e in changed] == ["entra"]
    finally:
        source.close()
    # Closed, it can still be read (with a new session).
    assert len(source.read().records) == N_USERS
    source.close()


def test_a_source_not_kept_signs_in_on_every_read(tenant: Entra) -> None:
    source = EntraSource(tenant.config())
    source.read()
    source.read()
    assert tenant.standin.counters["token_requests"] == 2


def test_a_kept_source_starts_afresh_after_a_failed_read(tenant: Entra) -> None:
    source = EntraSource(tenant.config(max_retries=0))
    source.keep_open()
    try:
        source.read()
        tenant.standin.drop_page(after=0)
        with pytest.raises(Exception, match="users"):
            source.read()
        assert len(source.read().records) == N_USERS
        assert tenant.standin.counters["token_requests"] == 2  # a new session after the failure
    finally:
        source.close()


class _Recorder:
    """A keepable source that records what is done to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kept = False
        self.closed = 0

    def read(self, progress: Any = None) -> SourceRead:
        return SourceRead(())

    def keep_open(self) -> None:
        self.kept = True

    def close(self) -> None:
        self.closed += 1


def test_kept_sources_follow_the_config(tenant: Entra) -> None:
    built: list[_Recorder] = []

    def build(config: Any) -> Source:
        built.append(_Recorder(config.name))
        return built[-1]

    kept = KeptSources(build)
    first = tenant.config()
    assert kept.build(first) is kept.build(tenant.config())  # the same config: kept
    assert len(built) == 1 and built[0].kept
    changed = tenant.config(page_size=10)
    assert kept.build(changed) is built[1]
    assert built[0].closed == 1  # the old one is closed when its config changes
    kept.retain([])  # the source left the config
    assert built[1].closed == 1
    kept.build(first)
    kept.close()
    assert built[2].closed == 1


def test_sources_that_keep_nothing_are_built_for_every_run(tmp_path: Path) -> None:
    from syncd.sources.csv.config import CsvSourceConfig

    csv_config = CsvSourceConfig.model_validate({
        "name": "hr", "type": "csv", "path": str(tmp_path / "x.csv"), "end_user": "{email}"})
    kept = KeptSources(build_source)
    assert kept.build(csv_config) is not kept.build(csv_config)


# -- the daemon ---------------------------------------------------------------------

def test_daemon_runs_share_one_token_and_honour_a_rotated_secret(
        tenant: Entra, tmp_path: Path, standin: NebulyStandIn) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(str(tenant.standin.identity.client_secret), encoding="utf-8")
    config_file = tmp_path / "syncd.yaml"
    config_file.write_text(f"""
nebuly:
  base_url: {standin.url}
  api_key: {CANARY_API_KEY}
sources:{source_yaml(tenant.standin, secret_file, "entra", '    end_user: "{userPrincipalName}"')}
policy:
  max_deactivations: "100%"
""", encoding="utf-8")
    config = load_config(config_file)
    daemon = Daemon(config_file, config, build_schedule(config.schedule))
    try:
        daemon._tick()
        daemon._tick()
        assert daemon.failures == 0
        assert tenant.standin.counters["token_requests"] == 1
        assert len(roster(standin)) == N_USERS

        tenant.standin.identity = dataclasses.replace(tenant.standin.identity,
                                                      client_secret=NEW_SECRET)
        secret_file.write_text(NEW_SECRET, encoding="utf-8")
        daemon._tick()
        assert daemon.failures == 0
        assert tenant.standin.counters["token_requests"] == 2
        assert tenant.standin.counters["token_refused"] == 0
    finally:
        daemon.sources.close()


