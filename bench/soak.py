"""Soak: many consecutive runs in ONE daemon process against the Nebuly stand-in,
with a roster that changes every run. Reports RSS and open file descriptors over time.

    .venv/bin/python bench/soak.py --runs 500

The stand-in runs in its own process so only the daemon is measured. Linux only
(/proc). A quick variant runs in the test suite (tests/test_soak.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

USERS = 300


@dataclass
class SoakResult:
    runs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rss_kib: list[int] = field(default_factory=list)  # after each run
    fds: list[int] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    secret_leaked: bool = False

    def growth(self, series: list[int], warmup: int) -> tuple[int, int, float]:
        """(value after warm-up, peak after warm-up, growth %)."""
        base = series[warmup]
        peak = max(series[warmup:])
        return base, peak, 100.0 * (peak - base) / base

    def fd_windows(self, warmup: int, window: int = 20) -> tuple[int, int]:
        """Fewest fds open in the window after warm-up, and in the last window.

        A sample may catch a run's HTTP connection still open, so samples differ
        by one at random; a leak raises the floor, which is what this compares.
        """
        return min(self.fds[warmup:warmup + window]), min(self.fds[-window:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _write_roster(path: Path, rng: random.Random) -> None:
    # About 2% of people are absent and 2% change department each time.
    lines = ["email,department"]
    for i in range(USERS):
        if rng.random() < 0.02:
            continue
        dept = rng.choice(["Sales", "Ops", "Legal"]) if rng.random() < 0.02 else "Sales"
        lines.append(f"user{i:05d}@example.com,{dept}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def soak(runs: int, workdir: Path, secret: str = "soak-key-0123456789") -> SoakResult:
    env = {**os.environ, "SOAK_KEY": secret}
    nebuly_port, health_port = _free_port(), _free_port()
    roster = workdir / "roster.csv"
    rng = random.Random(1)
    _write_roster(roster, rng)
    config = workdir / "syncd.yaml"
    config.write_text(f"""
nebuly:
  base_url: http://127.0.0.1:{nebuly_port}
  api_key: ${{SOAK_KEY}}
  batch_size: 50
sources:
  - name: hr
    type: csv
    path: {roster}
    end_user: "{{email}}"
    tags: {{department: "{{department}}"}}
policy: {{max_deactivations: "100%"}}
logging: {{format: json}}
schedule: {{interval: 20ms, run_at_start: true}}
health: {{host: 127.0.0.1, port: {health_port}}}
""", encoding="utf-8")
    standin = subprocess.Popen(
        [sys.executable, "-m", "standins.nebuly", "--port", str(nebuly_port),
         "--api-key-env", "SOAK_KEY"], env=env, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1])  # the stand-ins live in the repository
    assert standin.stdout is not None
    standin.stdout.readline()  # "listening on ..."
    result = SoakResult()
    start = time.monotonic()
    daemon = subprocess.Popen([sys.executable, "-m", "syncd.app.cli", "run", "--config",
                               str(config)], env=env, stderr=subprocess.PIPE, text=True)
    stop_mutating = threading.Event()

    def mutate() -> None:
        while not stop_mutating.wait(0.01):
            _write_roster(roster, rng)

    mutator = threading.Thread(target=mutate, daemon=True)
    mutator.start()
    try:
        assert daemon.stderr is not None
        for line in daemon.stderr:
            if secret in line:
                result.secret_leaked = True
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") != "sync.finished":
                continue
            result.runs += 1
            status = event["status"]
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.rss_kib.append(_status_kib(daemon.pid))
            result.fds.append(len(os.listdir(f"/proc/{daemon.pid}/fd")))
            if result.runs >= runs:
                break
    finally:
        stop_mutating.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            rest, _ = daemon.communicate(timeout=30)  # drains stderr, then closes the pipe
            result.secret_leaked |= secret in (rest or "")
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.communicate()
        result.exit_code = daemon.returncode
        standin.terminate()
        standin.communicate(timeout=10)
    result.seconds = time.monotonic() - start
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.runs, Path(tmp))
    warmup = max(1, result.runs // 10)
    rss0, rss_peak, rss_growth = result.growth(result.rss_kib, warmup)
    fd_early, fd_late = result.fd_windows(warmup)
    print(f"runs logged        {result.runs} in {result.seconds:.0f} s; statuses {result.statuses}")
    print(f"RSS after run {warmup:<4} {rss0 / 1024:.1f} MiB; peak after {rss_peak / 1024:.1f} MiB;"
          f" growth {rss_growth:+.1f}% (target < 10%)")
    print(f"open fds           {fd_early} in runs {warmup}-{warmup + 19}, {fd_late} in the last "
          f"20 runs (fewest in each; {min(result.fds)}-{max(result.fds)} overall; target: "
          "no growth)")
    print(f"daemon exit code   {result.exit_code}; secret in output: {result.secret_leaked}")
    ok = (rss_growth < 10 and fd_late <= fd_early and result.exit_code == 0
          and not result.secret_leaked and result.runs == args.runs)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
