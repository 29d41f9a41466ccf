"""The Entra source when things go wrong: throttling, dropped pages, refused tokens, secrets."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest

from syncd.sources.base import SourceError
from syncd.sources.entra.source import EntraSource
from tests.conftest import CANARY_CLIENT_SECRET
from tests.conftest_entra import N_USERS, Entra, entra_server, graph

__all__ = ["entra_server", "graph"]  # fixtures used by name

ALL = {"include_disabled": True, "include_guests": True}


def test_throttled_then_success_honours_retry_after(graph: Entra) -> None:
    standin = graph.standin
    standin.throttle(429, retry_after=1, times=1, after=1)  # page 2 throttled once
    standin.throttle(503, retry_after=1, times=1, after=1)  # then page 3 unavailable once
    result = EntraSource(graph.config(**ALL)).read()
    assert len(result.records) == N_USERS
    assert standin.counters["status_429"] == 1 and standin.counters["status_503"] == 1
    assert standin.counters["pages"] == 3 and standin.counters["graph"] == 5
    assert standin.counters["tokens"] == 1


def test_throttling_past_max_retries_fails_the_read(graph: Entra) -> None:
    graph.standin.throttle(429, retry_after=1, times=10)
    with pytest.raises(SourceError, match=r"Graph answered 429 .* after 1 retries"):
        EntraSource(graph.config(max_retries=1)).read()
    assert graph.standin.counters["status_429"] == 2  # the first try and one retry


def test_retry_after_over_the_cap_fails_at_once(graph: Entra) -> None:
    graph.standin.throttle(429, retry_after=120, times=1)
    with pytest.raises(SourceError, match=r"asked to wait 120s .* max_retry_delay \(5s\)"):
        EntraSource(graph.config()).read()
    assert graph.standin.counters["status_429"] == 1


def test_dropped_page_mid_read_is_a_source_error(graph: Entra) -> None:
    graph.standin.drop_page(after=1)
    with pytest.raises(SourceError, match=r"reading users \(page 2\): connection .* failed"):
        EntraSource(graph.config(**ALL)).read()
    assert graph.standin.counters["dropped"] == 1


def test_server_error_mid_read_is_a_source_error(graph: Entra) -> None:
    graph.standin.throttle(500, retry_after=None, times=1, after=2)
    with pytest.raises(SourceError, match=r"Graph answered 500 reading users \(page 3\)"):
        EntraSource(graph.config(**ALL)).read()


def test_group_read_failure_is_a_source_error(graph: Entra) -> None:
    graph.standin.drop_page(after=0)
    with pytest.raises(SourceError, match="members of group group-eng"):
        EntraSource(graph.config(groups=["group-eng"])).read()


def test_refused_secret_is_clear_and_never_shown(
        graph: Entra, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every library logger, at its chattiest
    caplog.set_level(logging.DEBUG, logger="azure.identity")  # the source quiets it
    with pytest.raises(SourceError) as caught:
        EntraSource(graph.config(client_secret=CANARY_CLIENT_SECRET)).read()
    message = str(caught.value)
    assert "cannot get an access token (client secret" in message
    assert "AADSTS7000215" in message and "create a new one" in message
    assert graph.standin.counters["token_refused"] == 1
    assert graph.standin.counters["graph"] == 0  # nothing read without a token
    shown = "".join(traceback.format_exception(caught.value)) + caplog.text
    assert "AADSTS7000215" in caplog.text  # azure-identity's own log line was captured
    out, err = capfd.readouterr()
    for text in (message, shown, out, err):
        assert CANARY_CLIENT_SECRET not in text


def test_token_endpoint_failure_after_a_good_secret(graph: Entra) -> None:
    graph.standin.fail_tokens(times=1)
    with pytest.raises(SourceError, match="cannot get an access token"):
        EntraSource(graph.config()).read()
    # The next run gets a token again: nothing is cached across runs.
    assert len(EntraSource(graph.config(**ALL)).read().records) == N_USERS


def test_secret_file_is_reread_on_every_run(graph: Entra, tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CANARY_CLIENT_SECRET + "\n", encoding="utf-8")
    source = EntraSource(graph.config(client_secret_file=str(secret_file)))
    with pytest.raises(SourceError) as caught:
        source.read()
    assert CANARY_CLIENT_SECRET not in str(caught.value)
    secret_file.write_text(str(graph.standin.identity.client_secret), encoding="utf-8")
    assert source.read().records  # rotated secret picked up without a restart


def test_missing_token_file_for_workload_identity(graph: Entra, tmp_path: Path) -> None:
    config = graph.config(workload_identity=True, token_file=str(tmp_path / "none"))
    with pytest.raises(SourceError, match="cannot read the token file"):
        EntraSource(config).read()


def test_workload_identity_without_any_token_file(
        graph: Entra, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    with pytest.raises(SourceError, match="AZURE_FEDERATED_TOKEN_FILE is not set"):
        EntraSource(graph.config(workload_identity=True)).read()


def test_managed_identity_unavailable(graph: Entra, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", graph.standin.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "wrong-header")
    config = graph.config(managed_identity=True)
    with pytest.raises(SourceError, match="cannot get an access token \\(managed identity"):
        EntraSource(config).read()


def test_a_next_link_to_another_host_fails_the_read_and_is_never_followed(graph: Entra) -> None:
    standin = graph.standin
    # The same server under another name: a followed link would be counted.
    elsewhere = f"http://localhost:{standin.port}"
    standin.send_next_links_to(elsewhere)
    with pytest.raises(SourceError, match=r"reading users \(page 2\): Graph sent a next link "
                       rf"to another host \({elsewhere}\); nothing was written"):
        EntraSource(graph.config(**ALL)).read()
    assert standin.counters["graph"] == 1 and standin.counters["pages"] == 1
