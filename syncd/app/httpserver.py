"""The health port's HTTP server: one asyncio loop in one thread, whatever the clients do.

The stdlib ThreadingHTTPServer it replaces started a thread per connection:
slow clients drove it to ~1,900 threads, and under the shipped limits
(TasksMax=256, pids_limit: 256) about 250 idle connections stopped /livez
answering. Here a connection costs a socket and a coroutine, never a thread;
at most MAX_CONNECTIONS wait for their request at once (a new one evicts the
oldest waiting, so a probe always gets in); each must send its request within
REQUEST_DEADLINE_S; a reset or a vanished client is ignored, never a traceback
(an unexpected error is one JSON event). Only GET and HEAD of the routes, with a
request head of at most MAX_HEAD_BYTES; every answer closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from syncd import log

# (status code, content type, body)
Response = tuple[int, str, bytes]
Route = Callable[[], Response]

MAX_CONNECTIONS = 64
REQUEST_DEADLINE_S = 5.0
MAX_HEAD_BYTES = 8192
_READ_LIMIT = 64 * 1024  # past this the client is not sending HTTP: drop it
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}
_CLIENT_GONE = (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError)


def _error(status: int, message: str) -> Response:
    return status, "application/json", json.dumps({"error": message}).encode() + b"\n"


class HealthServer:
    """Serves `routes` (path -> Route) on host:port; port 0 picks a free port."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], *,
                 max_connections: int = MAX_CONNECTIONS,
                 deadline: float = REQUEST_DEADLINE_S) -> None:
        self._address = (host, port)
        self._routes = routes
        self._max_connections = max_connections
        self._deadline = deadline
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Connections still waiting for their request, oldest first.
        self._waiting: OrderedDict[asyncio.StreamWriter, None] = OrderedDict()

    def start(self) -> int:
        """Bind and serve; returns the bound port. Raises OSError if it cannot bind."""
        host, port = self._address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_error)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(asyncio.start_server(
                self._connection, sock=sock, limit=_READ_LIMIT))
            started.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                for writer in list(self._waiting):
                    writer.transport.abort()
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="syncd-health", daemon=True)
        self._thread.start()
        started.wait(10)
        return int(sock.getsockname()[1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._waiting[writer] = None
        if len(self._waiting) > self._max_connections:
            oldest, _ = self._waiting.popitem(last=False)
            oldest.transport.abort()  # a slow client makes room for a probe
        try:
            response, send_body = await self._request(reader)
            if response is not None:
                await self._answer(writer, response, send_body)
        except _CLIENT_GONE:
            pass  # the client reset, vanished or was too slow: nothing to tell anyone
        except Exception as exc:  # a bug here must not print a traceback or stop the port
            log.get_logger().error("health.request_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._waiting.pop(writer, None)
            writer.close()

    async def _request(self, reader: asyncio.StreamReader) -> tuple[Response | None, bool]:
        """(the answer, whether to send its body); no answer for a client not speaking HTTP."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._deadline)
        except asyncio.LimitOverrunError:
            return None, False
        if len(head) > MAX_HEAD_BYTES:
            return _error(431, "request head too large"), True
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _error(400, "bad request line"), True
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return _error(405, "only GET and HEAD"), True
        route = self._routes.get(target.split("?", 1)[0])
        if route is None:
            return (404, "text/plain; charset=utf-8", b"not found\n"), method == "GET"
        try:
            return route(), method == "GET"
        except Exception as exc:  # a probe must answer, never drop the connection
            log.get_logger().error("health.route_failed", path=target.split("?", 1)[0],
                                   error=f"{type(exc).__name__}: {exc}")
            return _error(500, "error"), method == "GET"

    async def _answer(self, writer: asyncio.StreamWriter, response: Response,
                      send_body: bool) -> None:
        status, content_type, body = response
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode("latin-1")
        writer.write(head + body if send_body else head)
        await asyncio.wait_for(writer.drain(), self._deadline)


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's default handler prints a traceback: one JSON event instead."""
    del loop
    exc = context.get("exception")
    if isinstance(exc, _CLIENT_GONE):
        return
    log.get_logger().error("health.loop_error", message=str(context.get("message")),
                           error=f"{type(exc).__name__}: {exc}" if exc else None)
