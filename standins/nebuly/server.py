"""A local stand-in for Nebuly's user-roster API, for tests, the demo and benchmarks.

Serves both API flavours of shared/nebuly-api.md over an in-memory roster,
with injectable faults, a call log and optional persistence. Control
endpoints under /_standin/ let tests drive it when syncd runs as a
subprocess; they have no auth, so bind the server to loopback only.

Run: python -m standins.nebuly.server [--port 8931] [--api-key-env NEBULY_API_KEY]
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import os
import signal
import ssl
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal

import msgspec

from standins.nebuly.faults import WRITE_METHODS, Call, Fault, FaultQueue, fault_from_json
from standins.nebuly.handler import (
    CONTROL_PREFIX,
    Reply,
    StandInServer,
    encode,
    error_reply,
    json_reply,
)
from standins.nebuly.roster import (
    ExistingInsert,
    MissingUpdate,
    Roster,
    WireUser,
    with_timestamps,
)

__all__ = ["Call", "Fault", "NebulyStandIn", "main"]

Operation = Literal["list", "insert", "update", "delete"]

# The two flavours swap the verbs for insert and update.
_ROUTES: dict[str, dict[str, Operation]] = {
    "/api/external/platform-users": {
        "GET": "list",
        "PUT": "insert",
        "POST": "update",
        "DELETE": "delete",
    },
    "/api/external/eligible-users": {
        "GET": "list",
        "POST": "insert",
        "PUT": "update",
        "DELETE": "delete",
    },
}
_CONTROL_METHODS = {
    "users": ("GET", "PUT"),
    "faults": ("POST", "DELETE"),
    "calls": ("GET", "DELETE"),
}


def _users_field(body: bytes) -> list[Any] | str:
    """The `users` list of a request body, or an error detail for a 400."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "request body is not valid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        return "request body must be an object with a 'users' list"
    users: list[Any] = data["users"]
    return users


class NebulyStandIn:
    """In-process fake of Nebuly's roster API; see the module docstring."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        state_file: Path | None = None,
        existing_insert: ExistingInsert = "omit",
        missing_update: MissingUpdate = "omit",
        max_batch: int | None = None,
        timestamps: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        # tls: serve HTTPS with this server context (a throwaway CA's certificate).
        self._tls = tls
        self._expected_auth = f"Bearer {api_key}".encode()
        self._state_file = state_file
        self._existing_insert: ExistingInsert = existing_insert
        self._missing_update: MissingUpdate = missing_update
        self._max_batch = max_batch
        self._timestamps = timestamps
        self._lock = threading.Lock()
        self._roster = Roster()
        self._faults = FaultQueue()
        self._calls: list[Call] = []
        self._in_flight = 0  # API requests being handled (a delay fault may hold them)
        self._generation = 0  # bumped on every roster change, under _lock
        self._save_lock = threading.Lock()
        self._saved_generation = 0
        self._stopping = threading.Event()
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("stand-in already started")
        if self._state_file is not None and self._state_file.exists():
            self._roster.replace_all(_users_field_or_raise(self._state_file.read_bytes()))
        self._stopping.clear()
        self._server = StandInServer(host, port, self)
        if self._tls is not None:
            # The handshake happens in accept(); a client that rejects the
            # certificate makes accept() fail, which socketserver ignores.
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="nebuly-standin",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()  # wakes handlers sleeping on a `delay` fault
        server.shutdown()
        thread.join()
        server.close_all()

    def __enter__(self) -> NebulyStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    # -- test helpers ----------------------------------------------------
    def seed(self, users: list[dict[str, Any]]) -> None:
        """Replace the roster. Records are stored as given (not validated), so
        tests can plant data a real server might hold, e.g. timestamps."""
        copy: list[WireUser] = msgspec.json.decode(encode(users))  # fast deep copy
        with self._lock:
            self._roster.replace_all(copy)
            snapshot, generation = self._bump()
        self._save(snapshot, generation)

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            snapshot = self._roster.snapshot()
        users: list[dict[str, Any]] = msgspec.json.decode(encode(snapshot))
        return users

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.add(*faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every API request so far (control requests excluded)."""
        with self._lock:
            return list(self._calls)

    def write_calls(self) -> int:
        with self._lock:
            return sum(1 for call in self._calls if call.method in WRITE_METHODS)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def in_flight(self) -> int:
        """API requests received but not yet answered (and so not yet in `calls`)."""
        with self._lock:
            return self._in_flight

    # -- request handling (called from handler threads) ------------------
    def serve_api(self, method: str, path: str, body: bytes, auth: str | None) -> Reply:
        arrived = time.monotonic()
        with self._lock:
            self._in_flight += 1
        try:
            reply = self._route_api(method, path, body, auth)
        except BaseException:
            with self._lock:
                self._in_flight -= 1
            raise
        # Recorded in the same step as it stops being in flight: a caller waiting
        # for in_flight() == 0 then sees it in `calls`.
        with self._lock:
            self._in_flight -= 1
            status = 0 if reply.drop else reply.status
            self._calls.append(Call(method, path, status, reply.n_users, arrived))
        return reply

    def _route_api(self, method: str, path: str, body: bytes, auth: str | None) -> Reply:
        route = _ROUTES.get(path)
        if route is None:
            return error_reply(404, "not found")
        operation = route.get(method)
        if operation is None:
            return error_reply(405, "method not allowed", allow=tuple(route))
        # Constant-time compare; the received value is never echoed or logged.
        if not hmac.compare_digest((auth or "").encode(), self._expected_auth):
            return error_reply(401, "invalid api key")
        with self._lock:
            fault = self._faults.take(method)
        if fault is None:
            return self._operate(operation, body, None)
        # A server stopped during the delay must not apply a write nobody sees.
        if (fault.delay and self._stopping.wait(fault.delay)) or fault.drop:
            return Reply(0, drop=True)
        if fault.status is not None:
            reply = error_reply(fault.status, "injected fault", fault.retry_after)
        elif fault.body is not None:
            reply = Reply(200, fault.body)
        else:
            reply = self._operate(operation, body, fault)
        return replace(reply, reset_mid_body=fault.reset_mid_body)

    def _operate(self, operation: Operation, body: bytes, fault: Fault | None) -> Reply:
        if operation == "list":
            with self._lock:
                users = self._roster.snapshot()
            if fault is not None and fault.omit:
                hidden = set(fault.omit)
                users = [user for user in users if user["end_user"] not in hidden]
            if self._timestamps:
                users = [with_timestamps(user) for user in users]
            return json_reply(200, {"users": users}, n_users=len(users))
        batch = _users_field(body)
        if isinstance(batch, str):
            return error_reply(400, batch)
        n_users = len(batch)
        if self._max_batch is not None and n_users > self._max_batch:
            return replace(
                error_reply(413, f"at most {self._max_batch} users per request"), n_users=n_users
            )
        if fault is not None and fault.partial is not None:
            batch = batch[: fault.partial]
        if operation == "delete" and not all(isinstance(item, str) for item in batch):
            return replace(error_reply(400, "delete takes a list of end_user ids"), n_users=n_users)
        with self._lock:
            if operation == "insert":
                result = self._roster.insert(batch, self._existing_insert)
            elif operation == "update":
                result = self._roster.update(batch, self._missing_update)
            else:
                result = self._roster.delete(batch)
            snapshot, generation = self._bump() if result.changed else (None, 0)
        if snapshot is not None:
            self._save(snapshot, generation)
        if fault is not None and fault.apply_then_fail is not None:
            return replace(
                error_reply(
                    fault.apply_then_fail, "injected failure after apply", fault.retry_after
                ),
                n_users=n_users,
            )
        return json_reply(result.status, result.body, n_users=n_users)

    def serve_control(self, method: str, path: str, body: bytes, client_host: str) -> Reply:
        if not ipaddress.ip_address(client_host.removeprefix("::ffff:")).is_loopback:
            return error_reply(403, "control endpoints are for loopback clients only")
        resource = path.removeprefix(CONTROL_PREFIX)
        allowed = _CONTROL_METHODS.get(resource)
        if allowed is None:
            return error_reply(404, "not found")
        if method not in allowed:
            return error_reply(405, "method not allowed", allow=allowed)
        try:
            return self._control(method, resource, body)
        except ValueError as exc:
            return error_reply(400, str(exc))

    def _control(self, method: str, resource: str, body: bytes) -> Reply:
        if (method, resource) == ("GET", "users"):
            return json_reply(200, {"users": self.users()})
        if (method, resource) == ("PUT", "users"):
            users = _users_field_or_raise(body)
            self.seed(users)
            return json_reply(200, {"message": f"seeded {len(users)} users"})
        if (method, resource) == ("POST", "faults"):
            try:
                data = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                raise ValueError("request body is not valid JSON") from exc
            if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
                raise ValueError("request body must be an object with a 'faults' list")
            faults = [fault_from_json(item) for item in data["faults"]]
            self.inject(*faults)
            return json_reply(200, {"message": f"queued {len(faults)} faults"})
        if (method, resource) == ("DELETE", "faults"):
            self.clear_faults()
            return json_reply(200, {"message": "faults cleared"})
        if (method, resource) == ("GET", "calls"):
            calls = self.calls
            writes = sum(1 for call in calls if call.method in WRITE_METHODS)
            payload = {"calls": [call.to_json() for call in calls], "write_calls": writes}
            return json_reply(200, payload)
        self.reset_calls()
        return json_reply(200, {"message": "calls cleared"})

    # -- persistence -----------------------------------------------------
    def _bump(self) -> tuple[list[WireUser] | None, int]:
        """Note a roster change (caller holds _lock); a snapshot to save, if persisting."""
        self._generation += 1
        if self._state_file is None:
            return None, self._generation
        return self._roster.snapshot(), self._generation

    def _save(self, snapshot: list[WireUser] | None, generation: int) -> None:
        if snapshot is None or self._state_file is None:
            return
        # Encoding happens outside the main lock so big rosters do not stall
        # readers; the generation check stops a slower, older save from
        # overwriting a newer one.
        with self._save_lock:
            if generation <= self._saved_generation:
                return
            target = self._state_file
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(encode({"users": snapshot}))
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._saved_generation = generation


def _users_field_or_raise(body: bytes) -> list[WireUser]:
    users = _users_field(body)
    if isinstance(users, str):
        raise ValueError(users)
    return users


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m standins.nebuly",
        description="Local stand-in for Nebuly's roster API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8931)
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key", help="API key to accept (visible in ps; prefer --api-key-env)")
    keys.add_argument(
        "--api-key-env",
        default="NEBULY_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default: %(default)s)",
    )
    parser.add_argument(
        "--state", type=Path, help="JSON file the roster is loaded from and saved to"
    )
    parser.add_argument("--existing-insert", choices=["omit", "409", "upsert"], default="omit")
    parser.add_argument("--missing-update", choices=["omit", "404", "upsert"], default="omit")
    parser.add_argument("--max-batch", type=int)
    parser.add_argument(
        "--tls-dir", type=Path, metavar="DIR",
        help="serve HTTPS with a throwaway CA written to DIR (ca.pem: give it to nebuly.ca_file)")
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get(args.api_key_env)
    if not api_key:
        parser.error(f"no API key: set {args.api_key_env} or pass --api-key")

    standin = NebulyStandIn(
        api_key,
        state_file=args.state,
        existing_insert=args.existing_insert,
        missing_update=args.missing_update,
        max_batch=args.max_batch,
        tls=_throwaway_tls(args.tls_dir) if args.tls_dir else None,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin.start(args.host, args.port)
    print(f"nebuly stand-in listening on {standin.url}", flush=True)
    try:
        # A timed wait keeps the main thread responsive to signals everywhere.
        while not stop.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


def _throwaway_tls(directory: Path) -> ssl.SSLContext:
    from standins.entra.tls import make_tls, server_context

    return server_context(make_tls(directory))


if __name__ == "__main__":
    raise SystemExit(main())
