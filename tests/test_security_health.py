"""Security findings 5, 6 and 9 of issue 17: the health port. The daemon runs as a real
subprocess; clients are real sockets on 127.0.0.1. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import parse_config
from tests.conftest import CANARY_API_KEY, person, write_csv
from tests.test_daemon import DaemonProcess, daemon_config, spawn  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
SLOW_CLIENTS = 1000
# The shipped limits: TasksMax=256 (systemd) and pids_limit: 256 (compose) count threads.
SHIPPED_TASKS_MAX = 256


@pytest.fixture
def idle_daemon(tmp_path: Path, standin: NebulyStandIn,
                spawn: Callable[[Path], DaemonProcess]) -> DaemonProcess:  # noqa: F811
    """`syncd run` that serves its health port and waits an hour for its first run."""
    csv_path = write_csv(tmp_path / "roster.csv", [person(1)])
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, interval="1h",
                        schedule="  run_at_start: false")
    daemon = spawn(cfg)
    daemon.wait_event("daemon.started")
    return daemon


@pytest.fixture
def many_sockets() -> Iterator[list[socket.socket]]:
    """Room for a thousand client sockets, closed after the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * SLOW_CLIENTS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_5_livez_answers_under_a_thousand_slow_connections_with_few_threads(
        idle_daemon: DaemonProcess, many_sockets: list[socket.socket]) -> None:
    port = int(idle_daemon.url("/").rsplit(":", 1)[1].split("/")[0])
    baseline = _threads(idle_daemon.proc.pid)
    for _ in range(SLOW_CLIENTS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # ... and never the end
        many_sockets.append(sock)
    response = idle_daemon.get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert idle_daemon.get("/metrics").status_code == 200
    threads = _threads(idle_daemon.proc.pid)
    # Slow clients cost no thread: the count is what it was, far under TasksMax.
    assert threads <= baseline + 2, (baseline, threads)
    assert threads < SHIPPED_TASKS_MAX // 8
    code, _ = idle_daemon.terminate()
    assert code == 0
    idle_daemon.assert_clean_output()


def test_5_oversized_and_malformed_requests_get_a_json_answer_or_are_closed(
        idle_daemon: DaemonProcess) -> None:
    url = idle_daemon.url("/livez")
    huge = httpx.get(url, headers={"X-Pad": "a" * 20_000}, timeout=5, trust_env=False)
    assert huge.status_code == 431
    bad = httpx.request("DELETE", url, timeout=5, trust_env=False)
    assert bad.status_code == 405
    assert httpx.head(url, timeout=5, trust_env=False).status_code == 200
    assert httpx.get(idle_daemon.url("/nope"), timeout=5, trust_env=False).status_code == 404
    idle_daemon.terminate()
    idle_daemon.assert_clean_output()


def test_6_clients_that_reset_their_connection_leave_no_traceback(
        idle_daemon: DaemonProcess) -> None:
    port = int(idle_daemon.url("/").rsplit(":", 1)[1].split("/")[0])
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # SO_LINGER 0: close() sends RST instead of FIN, as a crashed client would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"GET /metrics HTTP/1.1\r\n" if i % 2 else b"GET /livez HTTP/1.1\r\n\r\n")
        sock.close()
    assert idle_daemon.get("/livez").status_code == 200
    code, _ = idle_daemon.terminate()
    assert code == 0
    idle_daemon.assert_clean_output()  # every line one JSON event, no Traceback
    for line in idle_daemon.output.splitlines():
        json.loads(line)


def test_9_the_health_port_binds_loopback_unless_configured(
        tmp_path: Path, standin: NebulyStandIn,
        spawn: Callable[[Path], DaemonProcess]) -> None:  # noqa: F811
    text = f"nebuly: {{api_key: {CANARY_API_KEY}}}\nsources: [{{name: a, type: csv, " \
           "path: x.csv, end_user: '{email}'}]\n"
    assert "SYNCD_HEALTH_HOST" not in os.environ
    assert parse_config(text).health.host == "127.0.0.1"
    assert parse_config(text + "health: {host: 0.0.0.0}\n").health.host == "0.0.0.0"
    csv_path = write_csv(tmp_path / "roster.csv", [person(1)])
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, interval="1h",
                        schedule="  run_at_start: false")
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("  host: 127.0.0.1\n", ""),
                   encoding="utf-8")
    daemon = spawn(cfg)
    assert daemon.wait_event("daemon.started")[0]["health_host"] == "127.0.0.1"
    daemon.terminate()


def test_9_containers_bind_all_interfaces_explicitly() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "SYNCD_HEALTH_HOST=0.0.0.0" in dockerfile
    for config in ("deploy/kubernetes/config.yaml", "deploy/compose/config.yaml"):
        doc = yaml.safe_load((REPO / config).read_text(encoding="utf-8"))
        assert doc["health"]["host"] == "0.0.0.0", config


def test_9_kubernetes_ships_a_network_policy_for_the_metrics_scraper_only() -> None:
    base = REPO / "deploy" / "kubernetes"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "networkpolicy.yaml" in kustomization["resources"]
    policy = yaml.safe_load((base / "networkpolicy.yaml").read_text(encoding="utf-8"))
    assert policy["kind"] == "NetworkPolicy"
    # kustomize `labels` (includeSelectors) fills the selector with the pod's labels, as it
    # does the Deployment's; it would also rewrite matchLabels in peers, hence expressions.
    assert kustomization["labels"][0]["includeSelectors"] is True
    assert policy["spec"]["podSelector"] == {"matchLabels": {}}
    assert "Ingress" in policy["spec"]["policyTypes"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9464}]
    assert rule["from"], "an empty 'from' would admit every pod"
    for peer in rule["from"]:
        assert set(peer) == {"podSelector", "namespaceSelector"}
        assert "matchLabels" not in peer["podSelector"] and peer["podSelector"]["matchExpressions"]
