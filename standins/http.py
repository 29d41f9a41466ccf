"""What the Entra, Okta and Google stand-ins share: a threaded HTTP(S) server on
127.0.0.1, JSON answers, injected faults, the lifecycle, counters and the record
of requests.

TLS (when a context is given) is negotiated in each connection's thread, so a
slow handshake never holds up the accept loop. Faults that drop a connection
are expected; their errors are not printed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

from standins.entra.tls import TlsFiles, make_tls, server_context


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
    """Plumbing for JSON answers; subclasses route, and answer a status fault in their
    API's error shape (send_fault)."""

    protocol_version = "HTTP/1.1"
    content_type: ClassVar[str] = "application/json; charset=UTF-8"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(self, status: int, body: bytes,
                  headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
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

    def answer_fault(self, fault: dict[str, Any]) -> None:
        """An API request hit an injected fault (Standin.next_fault): drop the
        connection, or answer the fault's status as the API would."""
        if fault["kind"] == "drop":
            return self.drop()
        return self.send_fault(fault)

    def send_fault(self, fault: dict[str, Any]) -> None:
        raise NotImplementedError

    def read_form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        length = int(self.headers.get("Content-Length") or 0)
        return dict(parse_qsl(self.rfile.read(length).decode()))

    def base_url(self) -> str:
        scheme = "https" if self.server.context is not None else "http"
        return f"{scheme}://{self.headers.get('Host', 'localhost')}"

    def next_link_base(self) -> str:
        """Where next-page links point: this server as asked, unless a test moved them."""
        return self.server.standin.next_links_to or self.base_url()


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


class Standin:
    """Lifecycle, counters and faults of a stand-in; subclasses set `handler`.

    A context manager: `with OktaStandin(...) as okta:` starts the server on a
    free port of 127.0.0.1 and stops it (and removes its TLS files) after.
    """

    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self, *, https: bool, tls_dir: Path | None = None) -> None:
        self.counters: Counter[str] = Counter()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.faults = Faults()
        self.lock = threading.Lock()
        self._token_failures = 0
        # An origin next-page links point to instead of this server (send_next_links_to).
        self.next_links_to: str | None = None
        self._servers: list[Server] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.tls: TlsFiles | None = None
        if https:
            if tls_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="standin-tls-")
                tls_dir = Path(self._tmp.name)
            self.tls = make_tls(tls_dir)

    def listeners(self) -> list[ssl.SSLContext | None]:
        """One server is started per entry, with that TLS context (None: plain HTTP)."""
        return [server_context(self.tls) if self.tls else None]

    def start(self) -> Self:
        self._servers = [Server(self.handler, self, context).start()
                         for context in self.listeners()]
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def port_of(self, listener: int) -> int:
        """The port of the `listener`-th entry of listeners()."""
        assert self._servers, "start the stand-in first"
        return self._servers[listener].port

    @property
    def port(self) -> int:
        return self.port_of(0)

    def fail_tokens(self, times: int = 1_000_000) -> None:
        """The token endpoint refuses the next `times` requests, in its API's words."""
        with self.lock:
            self._token_failures = times

    def token_refused(self) -> bool:
        """True if this token request meets a refusal fail_tokens() asked for."""
        with self.lock:
            if self._token_failures > 0:
                self._token_failures -= 1
                return True
            return False

    def send_next_links_to(self, origin: str) -> None:
        """Point every next-page link at `origin` (e.g. `http://localhost:<port>`) until
        clear(): a server trying to lead the client, and its token, to another host."""
        with self.lock:
            self.next_links_to = origin

    def drop_page(self, after: int = 0, times: int = 1) -> None:
        """Close the connection without an answer on `times` API requests, after `after`."""
        self.faults.add("drop", skip=after, times=times)

    def record(self, path: str, query: dict[str, str]) -> None:
        self.counters["api"] += 1
        with self.lock:
            self.seen.append((path, query))

    def next_fault(self) -> dict[str, Any] | None:
        """The injected fault an API request meets, if any, counted as `dropped` or
        `status_<code>`; the handler answers it (JsonHandler.answer_fault)."""
        fault = self.faults.next()
        if fault is not None:
            self.counters["dropped" if fault["kind"] == "drop"
                          else f"status_{fault['status']}"] += 1
        return fault

    def clear(self) -> None:
        """Counters, seen requests and faults (token refusals too) back to nothing."""
        with self.lock:
            self.counters.clear()
            self.seen.clear()
            self._token_failures = 0
            self.next_links_to = None
        self.faults.clear()


def serve_until_interrupted(announcement: dict[str, Any]) -> None:
    """Say where a stand-in run as a program listens, then serve until Ctrl-C. One
    JSON line: a parent process reads it to find the ports."""
    print(json.dumps(announcement), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
