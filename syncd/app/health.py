"""/livez, /readyz and /metrics: a small HTTP server on one asyncio loop in one thread.

Readiness is honest (peers' always-200 /healthz hid daemons that had stopped
syncing): it is 200 only while a run has completed within `stale_after`
scheduling periods. HealthState holds what the probes decide on; the daemon
feeds it, the HTTP server (httpserver.py) only reads it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from syncd.app.httpserver import HealthServer, Response, Route

__all__ = ["HealthServer", "HealthState", "Response", "Route", "Verdict", "json_probe"]

Verdict = tuple[bool, dict[str, Any]]


class HealthState:
    """What /livez and /readyz answer from. All times are time.monotonic() seconds."""

    def __init__(self, period: float, stale_after: float, heartbeat_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._period = period
        self._stale_after = stale_after
        self._heartbeat_timeout = heartbeat_timeout
        self._last_success: float | None = None
        self._last_beat = clock()
        self._stopping = False

    def configure(self, period: float, stale_after: float) -> None:
        with self._lock:
            self._period, self._stale_after = period, stale_after

    def succeeded(self) -> None:
        with self._lock:
            self._last_success = self._clock()

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def stopping(self) -> None:
        with self._lock:
            self._stopping = True

    def readiness(self) -> Verdict:
        with self._lock:
            now, last, stopping = self._clock(), self._last_success, self._stopping
            window = self._stale_after * self._period
        if stopping:
            return False, {"status": "stopping", "reason": "the daemon is shutting down"}
        if last is None:
            return False, {"status": "not ready", "reason": "no run has completed yet"}
        age = now - last
        if age > window:
            return False, {"status": "not ready", "last_success_age_s": round(age, 1),
                           "reason": f"last completed run is {age:.0f}s old, over "
                                     f"stale_after x period = {window:g}s"}
        return True, {"status": "ready", "last_success_age_s": round(age, 1)}

    def liveness(self, scheduler_running: bool) -> Verdict:
        with self._lock:
            age, stopping = self._clock() - self._last_beat, self._stopping
        if stopping:
            return True, {"status": "stopping"}
        if not scheduler_running:
            return False, {"status": "dead", "reason": "the scheduler is not running"}
        if age > self._heartbeat_timeout:
            return False, {"status": "wedged", "reason": f"the scheduler has not run its "
                           f"heartbeat job for {age:.0f}s"}
        return True, {"status": "alive"}


def json_probe(check: Callable[[], Verdict]) -> Route:
    """A route answering 200 or 503 with the verdict's JSON."""

    def route() -> Response:
        ok, body = check()
        return (200 if ok else 503), "application/json", json.dumps(body).encode() + b"\n"

    return route
