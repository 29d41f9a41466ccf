"""A threaded HTTP(S) server on 127.0.0.1 shared by the Okta and Google stand-ins.

TLS (when a context is given) is negotiated in each connection's thread, so a
slow handshake never holds up the accept loop. Faults that drop a connection
are expected; their errors are not printed.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive clients must not hold up stop()

    def __init__(self, handler: type[BaseHTTPRequestHandler], standin: Any,
                 context: Any = None) -> None:
        self.standin = standin
        self.context = context
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> Server:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()  # wrap_socket took over the fd; shutdown_request won't see it

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer are expected (fault tests)


class JsonHandler(BaseHTTPRequestHandler):
    """Plumbing for JSON answers; subclasses route."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(self, status: int, body: bytes,
                  headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers or []:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, data: Any,
                  headers: list[tuple[str, str]] | None = None) -> None:
        self.send_body(status, json.dumps(data).encode(), headers)

    def drop(self) -> None:
        """Close the connection without an answer (a dropped page)."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def read_form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        length = int(self.headers.get("Content-Length") or 0)
        return dict(parse_qsl(self.rfile.read(length).decode()))

    def base_url(self) -> str:
        scheme = "https" if self.server.context is not None else "http"
        return f"{scheme}://{self.headers.get('Host', 'localhost')}"


class Faults:
    """Injected faults, served in order: each lets `skip` requests through, then
    hits `times` of them. Thread-safe (the server answers on many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[dict[str, Any]] = []

    def add(self, kind: str, *, skip: int = 0, times: int = 1, **details: Any) -> None:
        with self._lock:
            self._queue.append({"kind": kind, "skip": skip, "times": times, **details})

    def next(self) -> dict[str, Any] | None:
        with self._lock:
            for fault in self._queue:
                if fault["skip"] > 0:
                    fault["skip"] -= 1
                    continue
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._queue.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
