"""`syncd run`: the daemon as a real subprocess against the Nebuly stand-in, over real HTTP."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.app.daemon import backoff_delay, build_schedule, crontab_day_of_week
from syncd.app.health import HealthState
from syncd.app.metrics import Metrics
from syncd.run.orchestrator import run_once
from tests.conftest import CANARIES, CANARY_API_KEY, person, write_csv


def daemon_config(path: Path, url: str, csv_path: Path, *, port: int = 0, interval: str = "1s",
                  grace: str = "5s", nebuly: str = "", schedule: str = "") -> Path:
    text = f"""
nebuly:
  base_url: {url}
  api_key: {CANARY_API_KEY}
  max_retries: 0
  max_retry_wait: 1s
{nebuly}
sources:
  - name: hr
    type: csv
    path: {csv_path}
    end_user: "{{email}}"
    tags:
      department: "{{department}}"
policy:
  max_deactivations: "100%"
logging:
  format: json
schedule:
  interval: {interval}
  shutdown_grace: {grace}
{schedule}
health:
  host: 127.0.0.1
  port: {port}
  stale_after: 2
"""
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # atomic, as a ConfigMap update is: the daemon never reads half
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonProcess:
    """`syncd run` in a subprocess; its stdout and stderr collected line by line."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd.app.cli", "run", "--config", str(config), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self.proc.stdout, self.proc.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            lines = list(self.lines)
        found = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def wait_event(self, name: str, count: int = 1, timeout: float = 15,
                   where: Callable[[dict[str, Any]], bool] = lambda e: True,
                   ) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]]:
            found = [e for e in self.events(name) if where(e)]
            return found if len(found) >= count else []
        result: list[dict[str, Any]] = wait_for(enough, timeout, f"{count} x {name}")
        return result

    def url(self, path: str) -> str:
        port = self.wait_event("daemon.started", timeout=10)[0]["health_port"]
        return f"http://127.0.0.1:{port}{path}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url(path), timeout=5, trust_env=False)

    def terminate(self) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        elapsed = time.monotonic() - start
        for reader in self._readers:
            reader.join(timeout=5)
        return code, elapsed

    def assert_clean_output(self) -> None:
        text = self.output
        for canary in CANARIES:
            assert canary not in text, "a secret reached the daemon's output"
        assert "Traceback" not in text
        # Every line is one JSON event (no stray stdlib logging from APScheduler).
        assert all(line.startswith("{") for line in text.splitlines()), text[:2000]


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, *extra: str) -> DaemonProcess:
        daemon = DaemonProcess(config, *extra)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)
        for stream in (daemon.proc.stdout, daemon.proc.stderr):
            if stream is not None:
                stream.close()


def metrics(daemon: DaemonProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = daemon.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert CANARY_API_KEY not in response.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


# -- units -------------------------------------------------------------------

@pytest.mark.parametrize(("failures", "expected"), [
    (0, 60), (1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (50, 600), (10_000, 600)])
def test_backoff_doubles_from_the_period_up_to_the_cap(failures: int, expected: float) -> None:
    assert backoff_delay(failures, 60, 600) == expected


def test_backoff_never_makes_runs_more_frequent_than_the_period() -> None:
    assert backoff_delay(5, 3600, 60) == 3600


@pytest.mark.parametrize(("field", "names"), [
    ("*", "*"), ("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"),
    ("5-7", "sun,fri,sat"), ("sat,sun", "sun,sat"), ("*/2", "sun,tue,thu,sat"),
    ("1/3", "mon,thu")])
def test_crontab_days_keep_crontab_numbering(field: str, names: str) -> None:
    assert crontab_day_of_week(field) == names


def test_schedules() -> None:
    from syncd.config.model import ScheduleConfig

    assert build_schedule(ScheduleConfig()).period == 3600
    weekdays = build_schedule(ScheduleConfig(cron="0 2 * * 1-5", timezone="Europe/Paris"))
    assert weekdays.period == 3 * 86400  # Friday -> Monday: the staleness window's base
    with pytest.raises(ValueError, match=r"schedule\.timezone"):
        build_schedule(ScheduleConfig(timezone="Mars/Olympus"))
    with pytest.raises(ValueError, match=r"schedule\.cron"):
        build_schedule(ScheduleConfig(cron="99 * * * *"))


def test_readiness_follows_the_last_completed_run() -> None:
    now = [100.0]
    state = HealthState(period=10, stale_after=3, heartbeat_timeout=20, clock=lambda: now[0])
    assert state.readiness()[0] is False
    state.succeeded()
    now[0] += 30
    assert state.readiness() == (True, {"status": "ready", "last_success_age_s": 30.0})
    now[0] += 1
    ok, body = state.readiness()
    assert not ok and "over stale_after x period = 30s" in body["reason"]
    assert state.liveness(scheduler_running=True)[0] is False  # no heartbeat for 31 s > 20 s
    state.beat()
    assert state.liveness(scheduler_running=True) == (True, {"status": "alive"})
    assert state.liveness(scheduler_running=False)[0] is False


def test_metrics_observe_a_real_run(tmp_path: Path, standin: NebulyStandIn) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(7)])
    from syncd.config.model import load_config

    config = load_config(daemon_config(tmp_path / "c.yaml", standin.url, csv_path))
    registry = Metrics("9.9.9")
    registry.observe(run_once(config, today=date(2026, 11, 22)))
    text = registry.render()[0].decode()
    assert 'syncd_run_users{action="inserted"} 7.0' in text
    assert 'syncd_runs_total{status="ok"} 1.0' in text
    assert 'syncd_source_records{source="hr"} 7.0' in text
    assert 'syncd_build_info{python="' in text and 'version="9.9.9"' in text
    assert "syncd_run_duration_seconds_count 1.0" in text
    assert CANARY_API_KEY not in text


# -- the daemon as a subprocess ------------------------------------------------

def test_daemon_syncs_reports_backs_off_reloads_and_stops(
        tmp_path: Path, standin: NebulyStandIn, spawn: Callable[[Path], DaemonProcess]) -> None:
    rows = [person(i) for i in range(20)]
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    port = free_port()
    extra = "  max_backoff: 4s"
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, port=port,
                        schedule=extra)
    started = time.time()
    daemon = spawn(cfg)
    assert daemon.wait_event("daemon.started")[0]["health_port"] == port

    # Several runs: the first inserts, the next ones find nothing to do.
    finished = daemon.wait_event("sync.finished", count=3)
    assert [e["status"] for e in finished[:3]] == ["ok"] * 3
    assert finished[0]["inserted"] == 20 and finished[2]["unchanged"] == 20
    assert sum(1 for c in standin.calls if c.method == "GET") >= 3
    assert len(standin.users()) == 20
    assert daemon.get("/livez").status_code == 200
    ready = daemon.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    m = metrics(daemon)
    assert m[("syncd_runs_total", (("status", "ok"),))] >= 3
    assert m[("syncd_run_users", (("action", "unchanged"),))] == 20
    assert m[("syncd_run_users", (("action", "inserted"),))] == 0
    assert started <= m[("syncd_last_success_timestamp_seconds", ())] <= time.time()
    assert m[("syncd_source_records", (("source", "hr"),))] == 20
    assert m[("syncd_consecutive_failures", ())] == 0
    assert m[("syncd_run_duration_seconds_count", ())] >= 3

    # An invalid config file keeps the last good one; a valid edit is picked up.
    (tmp_path / "bad.yaml").write_text("nebuly: [\n", encoding="utf-8")
    (tmp_path / "bad.yaml").replace(cfg)
    daemon.wait_event("config.reload_failed")
    n = len(daemon.events("sync.finished"))
    daemon.wait_event("sync.finished", count=n + 1)
    assert daemon.events("sync.finished")[-1]["status"] == "ok"
    assert metrics(daemon)[("syncd_config_last_reload_successful", ())] == 0
    more = write_csv(tmp_path / "roster2.csv", [*rows, person(99)])
    daemon_config(cfg, standin.url, more, port=port, schedule=extra)
    daemon.wait_event("sync.finished", where=lambda e: e.get("inserted") == 1)
    assert "sources" in daemon.events("config.reloaded")[0]["changed"]
    assert len(standin.users()) == 21

    # Nebuly fails: runs fail, readiness turns 503, runs get further apart.
    standin.reset_calls()
    standin.inject(Fault(method="GET", status=503, times=-1))
    not_ready = wait_for(lambda: (r := daemon.get("/readyz")).status_code == 503 and r, 10,
                         "/readyz 503")
    assert "last completed run" in not_ready.json()["reason"]
    daemon.wait_event("daemon.backoff", count=3, timeout=20)
    failed_gets = [c.at for c in standin.calls if c.method == "GET" and c.status == 503]
    gaps = [b - a for a, b in itertools.pairwise(failed_gets)]
    assert len(gaps) >= 3, gaps
    assert gaps[0] < 1.8 and gaps[1] > 1.7 and gaps[2] > 3.5, gaps  # 1 s, 2 s, 4 s
    delays = [e["delay_s"] for e in daemon.events("daemon.backoff")]
    assert delays[:3] == [2.0, 4.0, 4.0]  # doubling, capped by max_backoff
    m = metrics(daemon)
    assert m[("syncd_consecutive_failures", ())] >= 3
    assert m[("syncd_errors_total", (("kind", "nebuly"),))] >= 3
    assert m[("syncd_runs_total", (("status", "nebuly_failed"),))] >= 3
    assert m[("syncd_last_run_exit_code", ())] == 4
    assert daemon.get("/livez").status_code == 200

    # Nebuly is back: the next run succeeds and readiness returns.
    standin.clear_faults()
    wait_for(lambda: daemon.get("/readyz").status_code == 200, 10, "/readyz 200 again")

    code, elapsed = daemon.terminate()
    assert code == 0 and elapsed < 10, (code, elapsed)
    assert daemon.events("daemon.stopped")[0]["clean"] is True
    daemon.assert_clean_output()


def test_runs_never_overlap(tmp_path: Path, standin: NebulyStandIn,
                            spawn: Callable[[Path], DaemonProcess]) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(5)])
    standin.inject(Fault(method="GET", delay=1.5, times=-1))  # each run outlasts the 1 s interval
    daemon = spawn(daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path))
    daemon.wait_event("sync.finished", count=3, timeout=20)
    assert daemon.get("/livez").status_code == 200  # port 0: the bound port is logged
    open_run: str | None = None
    for event in daemon.events():
        if event["event"] == "sync.started":
            assert open_run is None, f"run {event['run_id']} started during {open_run}"
            open_run = event["run_id"]
        elif event["event"] == "sync.finished":
            assert event["run_id"] == open_run
            open_run = None
    assert daemon.events("daemon.run_skipped")  # fire times during a run were skipped
    gets = [c.at for c in standin.calls if c.method == "GET"]
    assert all(b - a >= 1.45 for a, b in itertools.pairwise(gets)), gets
    code, elapsed = daemon.terminate()
    assert code == 0 and elapsed < 10, (code, elapsed)
    daemon.assert_clean_output()


def test_sigterm_during_apply_stops_after_the_in_flight_batch(
        tmp_path: Path, standin: NebulyStandIn, spawn: Callable[[Path], DaemonProcess]) -> None:
    users = 30
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(users)])
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, interval="1h",
                        nebuly="  batch_size: 1")
    standin.inject(Fault(method="PUT", delay=0.3, times=-1))  # inserts are slow
    daemon = spawn(cfg)
    wait_for(lambda: standin.write_calls() >= 3, 15, "three write batches")
    code, elapsed = daemon.terminate()
    assert code == 0 and elapsed < 10, (code, elapsed)
    writes = standin.write_calls()
    assert writes < users
    assert len(standin.users()) == writes  # the in-flight batch completed; nothing after it
    summary = daemon.events("sync.finished")[-1]
    assert summary["inserted"] == writes and "shutting down" in summary["error"]
    assert daemon.events("daemon.stopped")[0]["clean"] is True
    daemon.assert_clean_output()

    standin.clear_faults()
    once = subprocess.run([sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert once.returncode == 0, once.stderr
    assert len(standin.users()) == users
    assert json.loads(once.stderr.strip().splitlines()[-1])["inserted"] == users - writes


def test_sigterm_with_a_stuck_run_exits_after_the_grace_period(
        tmp_path: Path, standin: NebulyStandIn, spawn: Callable[[Path], DaemonProcess]) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(3)])
    cfg = daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path, grace="1s")
    standin.inject(Fault(method="GET", delay=30, times=-1))  # the run hangs reading Nebuly
    daemon = spawn(cfg)
    daemon.wait_event("sync.started")
    time.sleep(0.5)  # the GET is on its way
    code, elapsed = daemon.terminate()
    assert code == 0 and 0.9 < elapsed < 10, (code, elapsed)
    assert daemon.events("daemon.stop_timeout")
    assert daemon.events("daemon.stopped")[0]["clean"] is False
    assert standin.write_calls() == 0
    daemon.assert_clean_output()


def test_unusable_schedule_or_port_exits_2(tmp_path: Path, standin: NebulyStandIn,
                                           spawn: Callable[[Path], DaemonProcess]) -> None:
    csv_path = write_csv(tmp_path / "roster.csv", [person(0)])
    bad_tz = daemon_config(tmp_path / "a.yaml", standin.url, csv_path,
                           schedule="  timezone: Mars/Olympus")
    daemon = spawn(bad_tz)
    assert daemon.proc.wait(timeout=20) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = daemon_config(tmp_path / "b.yaml", standin.url, csv_path,
                              port=busy.getsockname()[1])
        daemon2 = spawn(taken)
        assert daemon2.proc.wait(timeout=20) == 2
    assert standin.calls == []
