"""Corporate networks: a private CA (TLS-inspecting proxy) and an HTTP CONNECT proxy.

The Nebuly stand-in serves HTTPS with a throwaway CA that no trust store knows, as
an intercepting proxy's certificates look to a client that was not told about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from standins.entra.tls import TlsFiles, make_tls, server_context
from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import run_once
from tests.conftest import CANARIES, CANARY_API_KEY, config_text, person, roster, write_csv
from tests.conftest_entra import Entra, entra_server, graph
from tests.connect_proxy import ConnectProxy
from tests.test_entra_e2e import write_config

__all__ = ["entra_server", "graph"]  # fixtures used by name

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls(tmp_path / "ca")


@pytest.fixture
def https_standin(tls: TlsFiles) -> Iterator[NebulyStandIn]:
    with NebulyStandIn(api_key=CANARY_API_KEY, tls=server_context(tls)) as server:
        yield server


def _config(tmp_path: Path, url: str, nebuly: str = "") -> Path:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(3)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(url, csv_path, nebuly=nebuly), encoding="utf-8")
    return cfg


def test_an_untrusted_certificate_fails_at_once_with_what_to_do(
        tmp_path: Path, https_standin: NebulyStandIn) -> None:
    assert https_standin.url.startswith("https://")
    report = run_once(load_config(_config(tmp_path, https_standin.url)))
    assert report.status == "nebuly_failed"
    assert report.error is not None
    assert "not trusted" in report.error and "nebuly.ca_file" in report.error
    assert https_standin.calls == []  # no request got past the handshake
    assert roster(https_standin) == {}


def test_ca_file_makes_the_private_ca_trusted(
        tmp_path: Path, tls: TlsFiles, https_standin: NebulyStandIn) -> None:
    # Relative to the config file, like every path in it.
    (tmp_path / "corp-ca.pem").write_bytes(tls.ca_file.read_bytes())
    cfg = _config(tmp_path, https_standin.url, nebuly="  ca_file: corp-ca.pem")
    report = run_once(load_config(cfg))
    assert report.status == "ok", report.error
    assert sorted(roster(https_standin)) == [person(i)["email"] for i in range(3)]


def test_an_unusable_ca_file_is_a_config_error_naming_it(
        tmp_path: Path, https_standin: NebulyStandIn) -> None:
    (tmp_path / "not-a-cert.pem").write_text("hello\n", encoding="utf-8")
    for name in ("missing.pem", "not-a-cert.pem"):
        cfg = _config(tmp_path, https_standin.url, nebuly=f"  ca_file: {name}")
        report = run_once(load_config(cfg))
        assert report.status == "config_error"
        assert report.error is not None and "nebuly.ca_file" in report.error
        assert name in report.error


def _once_via(cfg: Path, **proxy_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _PROXY_VARS}
    env.update(proxy_env)
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    for canary in CANARIES:
        assert canary not in done.stdout + done.stderr
    return done


def test_https_proxy_and_no_proxy_are_honoured(
        tmp_path: Path, tls: TlsFiles, https_standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, https_standin.url, nebuly=f"  ca_file: {tls.ca_file}")
    target = https_standin.url.removeprefix("https://")
    with ConnectProxy() as proxy:
        done = _once_via(cfg, HTTPS_PROXY=proxy.url)
        assert done.returncode == 0, done.stderr
        finished = [json.loads(line) for line in done.stderr.splitlines()
                    if '"sync.finished"' in line]
        assert finished and finished[0]["status"] == "ok"
        # One HTTP client per run: the GET and the insert share one tunnel.
        assert proxy.targets == [target]
        assert len(roster(https_standin)) == 3

        # NO_PROXY names the host: straight there, the proxy sees nothing more.
        done = _once_via(cfg, HTTPS_PROXY=proxy.url, NO_PROXY="127.0.0.1")
        assert done.returncode == 0, done.stderr
        assert proxy.targets == [target]


def test_a_proxy_that_cannot_reach_nebuly_is_reported_without_secrets(
        tmp_path: Path, tls: TlsFiles, https_standin: NebulyStandIn) -> None:
    url = https_standin.url
    https_standin.stop()  # the proxy answers 502: the target is gone
    cfg = _config(tmp_path, url, nebuly=f"  ca_file: {tls.ca_file}\n  max_retries: 0")
    with ConnectProxy() as proxy:
        done = _once_via(cfg, HTTPS_PROXY=proxy.url)
    assert done.returncode == 4, done.stderr
    assert proxy.targets == [url.removeprefix("https://")]


def test_graph_gets_the_proxy_the_environment_sets() -> None:
    """Graph's client is built on an explicit transport, which httpx gives no proxy."""
    code = ("from syncd.net import proxy_for; "
            "print(proxy_for('https://graph.microsoft.com/v1.0'), "
            "proxy_for('https://graph.internal.example/v1.0'))")
    env = {k: v for k, v in os.environ.items() if k.upper() not in _PROXY_VARS}
    env.update(HTTPS_PROXY="http://proxy.example:3128", NO_PROXY=".internal.example")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env=env)
    assert done.stdout.split() == ["http://proxy.example:3128", "None"]


def test_entra_reads_graph_through_the_proxy(tmp_path: Path, standin: NebulyStandIn,
                                             graph: Entra) -> None:
    """The Graph client (explicit transport) and the sign-in both take HTTPS_PROXY."""
    cfg, _ = write_config(tmp_path, standin, graph, str(graph.standin.identity.client_secret))
    # Graph over HTTPS, named by address so that its tunnel is told apart from the
    # sign-in's (same listener, reached as localhost).
    https_port = urlsplit(graph.standin.graph_https_url).port
    graph_target, login_target = f"127.0.0.1:{https_port}", f"localhost:{https_port}"
    text = cfg.read_text(encoding="utf-8").replace(
        f"graph_url: {graph.standin.graph_url}", f"graph_url: https://{graph_target}/v1.0")
    cfg.write_text(text, encoding="utf-8")
    with ConnectProxy() as proxy:
        done = _once_via(cfg, HTTPS_PROXY=proxy.url)
        assert done.returncode == 0, done.stderr
        # Nebuly's stand-in is plain http:// here, which HTTPS_PROXY does not cover.
        assert set(proxy.targets) == {graph_target, login_target}
        assert len(roster(standin)) > 20  # the CSV's 20 and Entra's people
        first = len(proxy.targets)
        done = _once_via(cfg, HTTPS_PROXY=proxy.url, NO_PROXY="127.0.0.1,localhost")
        assert done.returncode == 0, done.stderr
        assert len(proxy.targets) == first


def test_explain_reads_nebuly_through_the_same_ca_file(
        tmp_path: Path, tls: TlsFiles, https_standin: NebulyStandIn) -> None:
    cfg = _config(tmp_path, https_standin.url, nebuly=f"  ca_file: {tls.ca_file}")
    assert run_once(load_config(cfg)).status == "ok"
    done = subprocess.run([sys.executable, "-m", "syncd.app.cli", "explain", person(1)["email"],
                           "--config", str(cfg), "--json"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nebuly"][0]["end_user"] == person(1)["email"]
