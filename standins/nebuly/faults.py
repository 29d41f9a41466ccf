"""Fault injection and call records for the Nebuly stand-in server."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import msgspec

API_METHODS = frozenset({"GET", "PUT", "POST", "DELETE"})
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})


def _check_status(name: str, value: int | None) -> None:
    if value is not None and not 100 <= value <= 599:
        raise ValueError(f"{name} must be an HTTP status (100-599), got {value}")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour the stand-in applies to the next matching API request(s).

    Faults are checked after routing and auth, so a request that would get
    404/405/401 anyway never uses one up.
    """

    method: str | None = None  # "GET"/"PUT"/"POST"/"DELETE"; None = any API call
    times: int = 1  # how many matching requests it affects (-1 = forever)
    status: int | None = None  # answer with this status instead of handling the call
    retry_after: str | None = None  # Retry-After sent with `status` / `apply_then_fail`
    delay: float = 0.0  # seconds to wait before handling (latency, client timeouts)
    drop: bool = False  # close the connection without any response (nothing applied)
    reset_mid_body: bool = False  # handle, then send headers + half the body and close
    partial: int | None = None  # writes: only the first N users of the batch are handled
    apply_then_fail: int | None = None  # writes: apply everything, answer with this status
    body: bytes | None = None  # answer 200 with this raw body (nothing applied)
    # GET: the roster as it is now, but without these end_user ids (an eventually
    # consistent list that has not caught up); ignored by writes.
    omit: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in API_METHODS:
            raise ValueError(f"method must be one of {sorted(API_METHODS)} or None")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be >= 1, or -1 for forever")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.partial is not None and self.partial < 0:
            raise ValueError("partial must be >= 0")
        _check_status("status", self.status)
        _check_status("apply_then_fail", self.apply_then_fail)


_FAULT_FIELDS = frozenset(f.name for f in fields(Fault))


def fault_from_json(obj: object) -> Fault:
    """Build a Fault from the control endpoint's JSON (`body` given as text).

    Raises ValueError with a message fit to send back to the test.
    """
    if not isinstance(obj, dict):
        raise ValueError("each fault must be a JSON object")
    unknown = set(obj) - _FAULT_FIELDS
    if unknown:
        # A typo such as "retry-after" would otherwise silently inject a
        # different fault than the test meant.
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    spec: dict[str, Any] = dict(obj)
    raw_body = spec.pop("body", None)
    if raw_body is not None and not isinstance(raw_body, str):
        raise ValueError("fault body must be a string")
    try:
        fault = msgspec.convert(spec, Fault)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from exc
    if raw_body is None:
        return fault
    return replace(fault, body=raw_body.encode())


@dataclass(frozen=True)
class Call:
    """One API request as the stand-in saw it.

    `status` is 0 when the connection was dropped without a response.
    `n_users` counts the users (or ids) in a write's request body, or the
    users returned by a list call. `at` is `time.monotonic()` on arrival, so
    tests can measure the gaps a client leaves between retries.
    """

    method: str
    path: str
    status: int
    n_users: int
    at: float

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "n_users": self.n_users,
        }


class FaultQueue:
    """Injected faults in order, each with its remaining uses.

    Not thread-safe on its own: the stand-in only touches it under its lock.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[Fault, int]] = []

    def add(self, *faults: Fault) -> None:
        self._entries.extend((fault, fault.times) for fault in faults)

    def clear(self) -> None:
        self._entries.clear()

    def take(self, method: str) -> Fault | None:
        """Use up one application of the first fault that matches `method`.

        A fault for another method does not block the queue, so a test can
        queue a POST fault and still let the client's GET through.
        """
        for index, (fault, left) in enumerate(self._entries):
            if fault.method is not None and fault.method != method:
                continue
            if left == 1:
                del self._entries[index]
            elif left > 1:
                self._entries[index] = (fault, left - 1)
            return fault
        return None
