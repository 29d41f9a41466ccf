"""HTTP plumbing of the Nebuly stand-in: replies, the threaded server, the handler.

Knows nothing about rosters; it reads requests, hands them to the `App` and
writes its `Reply` back, including the broken replies that faults ask for.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec

CONTROL_PREFIX = "/_standin/"
encode = msgspec.json.encode


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    n_users: int = 0  # for the call log
    drop: bool = False  # close without answering
    reset_mid_body: bool = False  # send headers and half the body, then close


def json_reply(status: int, payload: object, n_users: int = 0) -> Reply:
    return Reply(status, encode(payload), n_users=n_users)


def error_reply(
    status: int, detail: str, retry_after: str | None = None, allow: tuple[str, ...] = ()
) -> Reply:
    headers: list[tuple[str, str]] = []
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    if allow:
        headers.append(("Allow", ", ".join(allow)))
    return Reply(status, encode({"detail": detail}), tuple(headers))


class App(Protocol):
    def serve_api(self, method: str, path: str, body: bytes, auth: str | None) -> Reply: ...

    def serve_control(self, method: str, path: str, body: bytes, client_host: str) -> Reply: ...


class StandInServer(ThreadingHTTPServer):
    """Tracks live connections so close_all() can end idle keep-alive ones;
    otherwise their handler threads (and sockets) would outlive the server."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app: App) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.app = app
        self._conns_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up (timeouts, dropped-connection tests) is routine here.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_all(self) -> None:
        """Close the listening socket and every connection, after shutdown()."""
        self.server_close()
        with self._conns_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK and every request costs ~40 ms.
    disable_nagle_algorithm = True
    server: StandInServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks make thousands of requests."""

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(error_reply(400, "bad request framing"))
            return
        path = urlsplit(self.path).path
        app = self.server.app
        if path.startswith(CONTROL_PREFIX):
            reply = app.serve_control(self.command, path, body, self.client_address[0])
        else:
            reply = app.serve_api(self.command, path, body, self.headers.get("Authorization"))
        self._send(reply)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch

    def _read_body(self) -> bytes | None:
        # Always consume the body, even for requests we reject, or its bytes
        # would be parsed as the next request on this keep-alive connection.
        try:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunked()
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        return self.rfile.read(length) if length >= 0 else None

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while size := int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if reply.reset_mid_body:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(reply.body)
