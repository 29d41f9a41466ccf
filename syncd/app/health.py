"""/livez, /readyz and /metrics: a small stdlib HTTP server in a daemon thread.

Readiness is honest (peers' always-200 /healthz hid daemons that had stopped
syncing): it is 200 only while a run has completed within `stale_after`
scheduling periods. HealthState holds what the probes decide on; the daemon
feeds it, the HTTP handler only reads it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (status code, content type, body)
Response = tuple[int, str, bytes]
Route = Callable[[], Response]
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], routes: dict[str, Route]) -> None:
        self.routes = routes
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can hang on a
        # machine without working DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that sends nothing does not hold a thread forever

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        else:
            try:
                status, content_type, body = route()
            except Exception:  # a probe must answer, never drop the connection
                status, content_type, body = 500, "text/plain; charset=utf-8", b"error\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the log; stay quiet."""


class HealthServer:
    """Serves `routes` (path -> Route) on host:port; port 0 picks a free port."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self._address = (host, port)
        self._routes = routes
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve; returns the bound port. Raises OSError if it cannot bind."""
        server_class = _Server6 if ":" in self._address[0] else _Server
        self._server = server_class(self._address, self._routes)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="syncd-health",
                                        daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()
