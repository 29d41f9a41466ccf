"""The transport to Nebuly's user roster: one httpx client, retries, batches.

Writes are made convergent because Nebuly does not document what happens when
an insert meets an existing user or an update a missing one: a user an insert
did not apply is retried once as an update (and vice versa), never more, so a
run can neither loop nor crash on it. A batch the server refuses is halved to
isolate the users it objects to. Retries honour Retry-After within a capped
total wait (retry.py). What the bodies and answers look like is in wire.py.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from syncd import log
from syncd.core.model import NebulyUser, id_key
from syncd.nebuly.errors import NebulyAuthError, NebulyError, NebulyUnavailable, Stopped
from syncd.nebuly.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after
from syncd.nebuly.wire import (
    FLAVOURS,
    Api,
    Op,
    Roster,
    acknowledged_ids,
    decode_roster,
    ids_body,
    status_message,
    users_body,
)
from syncd.net import is_untrusted_certificate, trust_context, untrusted_message
from syncd.pace import Every

# The names other packages have always imported from here, wherever they now live.
__all__ = ["NebulyAuthError", "NebulyClient", "NebulyError", "NebulyUnavailable", "Roster",
           "Stopped", "WriteOutcome", "decode_roster", "make_http_client"]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    applied: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (end_user, reason)
    # Set when Nebuly became unusable part-way: what was applied before is kept
    # in `applied`, the rest is in `failed`.
    aborted: str | None = None
    # Applied only by the insert call: an update of a user Nebuly does not hold.
    crossed: tuple[str, ...] = ()
    # Inserts Nebuly did not take because the user may already exist (409, or
    # left out of the answer). Never overwritten blindly: the caller re-reads
    # them and plans them with the same rules as everyone else.
    unconfirmed: tuple[str, ...] = ()
    # Inserts: those of `unconfirmed` an attempt answered with an error (or no
    # answer) may have inserted; only these can be syncd's own insert, the others
    # were there before the call. Updates: those of `failed` whose last call got
    # no usable answer, and which may have been applied all the same.
    uncertain: tuple[str, ...] = ()


class NebulyClient:
    """Talks to one Nebuly project. `http` carries base_url and the bearer header."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        api: Api = "platform-users",
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        progress_every: float = 10.0,
    ) -> None:
        self.http = http
        # A first load of a large roster is thousands of calls: say how far it is.
        self.clock = clock
        self._progress_due = Every(progress_every, clock)
        self.flavour = FLAVOURS[api]
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.should_stop = should_stop
        self.write_calls = 0
        self.read_calls = 0
        self.retries = 0

    # -- reading -------------------------------------------------------------

    def list_users(self) -> Roster:
        return decode_roster(self.fetch_users())

    def fetch_users(self) -> bytes:
        """The body of the roster GET, its status checked; decode_roster decodes it."""
        response = self._send("GET", None)
        if response.status_code != 200:
            raise NebulyError(_status_message("reading users", response))
        return response.content

    # -- writing -------------------------------------------------------------

    def insert(self, users: Sequence[NebulyUser]) -> WriteOutcome:
        return self._write("insert", users)

    def update(self, users: Sequence[NebulyUser]) -> WriteOutcome:
        return self._write("update", users)

    def delete(self, end_users: Sequence[str]) -> WriteOutcome:
        applied: list[str] = []
        failed: list[tuple[str, str]] = []
        for start in range(0, len(end_users), self.batch_size):
            batch = list(end_users[start:start + self.batch_size])
            try:
                self._check_stop()
                self._delete_batch(batch, applied, failed)
            except NebulyError as exc:
                done = set(applied) | {u for u, _ in failed}
                failed += [(u, f"not applied: {exc}") for u in end_users[start:]
                           if u not in done]
                return WriteOutcome(tuple(applied), tuple(failed), str(exc))
        return WriteOutcome(tuple(applied), tuple(failed))

    def _delete_batch(self, batch: list[str], applied: list[str],
                      failed: list[tuple[str, str]]) -> None:
        response = self._send("DELETE", ids_body(batch))
        if response.is_success:
            applied += batch
        elif response.status_code == 413 and len(batch) > 1:
            # Nebuly's batch limit is undocumented: halve until the server takes it.
            mid = len(batch) // 2
            self._delete_batch(batch[:mid], applied, failed)
            self._delete_batch(batch[mid:], applied, failed)
        else:
            reason = _status_message("delete", response)
            failed += [(u, reason) for u in batch]

    def _write(self, op: Op, users: Sequence[NebulyUser]) -> WriteOutcome:
        applied: list[str] = []
        crossed: list[str] = []
        unconfirmed: list[str] = []
        uncertain: list[str] = []
        failed: list[tuple[str, str]] = []
        for start in range(0, len(users), self.batch_size):
            batch = users[start:start + self.batch_size]
            try:
                self._check_stop()
                ok, not_taken, bad, maybe = self._write_batch(op, batch)
                applied += ok
                failed += bad
                if op == "insert":
                    # The user may exist (a list that lagged, or our own insert that
                    # landed before an error answer): an update now would replace
                    # values nobody read, so the caller re-reads instead.
                    unconfirmed += [u.end_user for u in not_taken]
                    uncertain += maybe
                elif not_taken:
                    # Updating someone Nebuly does not hold: inserting the record
                    # replaces nothing.
                    ok2, still_missing, bad2, _ = self._write_batch("insert", not_taken)
                    applied += ok2
                    crossed += ok2
                    failed += bad2
                    failed += [(u.end_user, "Nebuly applied neither the update nor the insert")
                               for u in still_missing]
                self._progress(op, start + len(batch), len(users))
            except NebulyError as exc:
                done = set(applied) | {u for u, _ in failed} | set(unconfirmed)
                lost = [u.end_user for u in users[start:] if u.end_user not in done]
                in_flight: set[str] = set()
                if isinstance(exc, NebulyUnavailable):
                    # The batch in flight may have been applied before the errors:
                    # the caller re-reads it to record what Nebuly holds.
                    in_flight = {u.end_user for u in batch} & set(lost)
                    uncertain += sorted(in_flight)
                if op == "insert":
                    unconfirmed += sorted(in_flight)
                    lost = [u for u in lost if u not in in_flight]
                failed += [(u, f"not applied: {exc}") for u in lost]
                return WriteOutcome(tuple(applied), tuple(failed), str(exc), tuple(crossed),
                                    tuple(unconfirmed), tuple(uncertain))
        return WriteOutcome(tuple(applied), tuple(failed), crossed=tuple(crossed),
                            unconfirmed=tuple(unconfirmed), uncertain=tuple(uncertain))

    def _progress(self, op: Op, done: int, total: int) -> None:
        if self._progress_due.due():
            log.get_logger().info("apply.progress", op=op, done=done, total=total,
                                  write_calls=self.write_calls)

    def _write_batch(
        self, op: Op, users: Sequence[NebulyUser], retried: bool = False
    ) -> tuple[list[str], list[NebulyUser], list[tuple[str, str]], list[str]]:
        """Send one batch: (applied ids, users to try with the other op, rejected users,
        the ids of those to try that an attempt answered with an error may have applied).
        `retried`: an earlier request carrying these users was answered with an error."""
        retries = self.retries
        response = self._send(self.flavour.method(op), users_body(users))
        retried = retried or self.retries > retries
        status = response.status_code
        if response.is_success:
            returned = acknowledged_ids(response.content)
            applied = [u.end_user for u in users if id_key(u.end_user) in returned]
            missing = [u for u in users if id_key(u.end_user) not in returned]
            return applied, missing, [], [u.end_user for u in missing] if retried else []
        if status in (400, 404, 409, 413, 422) and len(users) > 1:
            # Split to isolate the user(s) the server objects to: about 2k log2(n)
            # calls for k such users in a batch of n (every user, at worst 2n).
            mid = len(users) // 2
            a_ok, a_other, a_bad, a_maybe = self._write_batch(op, users[:mid], retried)
            b_ok, b_other, b_bad, b_maybe = self._write_batch(op, users[mid:], retried)
            return a_ok + b_ok, a_other + b_other, a_bad + b_bad, a_maybe + b_maybe
        if status in (404, 409):
            return [], list(users), [], [u.end_user for u in users] if retried else []
        reason = _status_message(op, response)
        return [], [], [(u.end_user, reason) for u in users], []

    def _check_stop(self) -> None:
        if self.should_stop():
            raise Stopped("shutting down; the rest is applied by the next run")

    # -- transport -----------------------------------------------------------

    def _send(self, method: str, content: bytes | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None
        waited = 0.0
        attempt = 0
        while True:
            problem: str
            delay: float | None = None
            # Every attempt is a call Nebuly may have acted on: each one is counted.
            if method == "GET":
                self.read_calls += 1
            else:
                self.write_calls += 1
            try:
                response = self.http.request(method, self.flavour.path, content=content,
                                             headers=headers)
            except httpx.TimeoutException:
                problem = f"timed out (nebuly.timeout {self.http.timeout.read or 0:g}s)"
            except httpx.ConnectError as exc:
                if is_untrusted_certificate(exc):
                    # Retrying cannot help: the trust store decides, not the network.
                    raise NebulyError(
                        untrusted_message(self.http.base_url, "nebuly.ca_file")) from None
                problem = f"connection failed: {_cause(exc)} ({type(exc).__name__})"
            except httpx.TransportError as exc:
                # The OS's words ("Connection refused", "Name or service not known")
                # are what an admin can act on; the class name alone is not.
                problem = f"connection failed: {_cause(exc)} ({type(exc).__name__})"
            else:
                if response.status_code in (401, 403):
                    raise NebulyAuthError(
                        f"Nebuly refused the API key (HTTP {response.status_code}): check "
                        "nebuly.api_key and that it is the project's key for this region")
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                problem = f"HTTP {response.status_code}"
                delay = parse_retry_after(response.headers.get("Retry-After"))
            attempt += 1
            if delay is None:
                delay = self.retry.backoff(attempt, self.rng)
            host = _host(self.http.base_url)
            if attempt > self.retry.max_retries or waited + delay > self.retry.max_total_wait:
                raise NebulyUnavailable(
                    f"{method} {host}{self.flavour.path}: {problem}; gave up after {attempt} "
                    f"attempt(s) and {waited:.0f}s of waiting (nebuly.max_retries, "
                    "nebuly.max_retry_wait)")
            # Waiting is never silent: an unreachable Nebuly is minutes of retries.
            log.get_logger().warning("nebuly.retry", method=method, host=host,
                                     attempt=attempt, max_retries=self.retry.max_retries,
                                     wait_s=round(delay, 3), cause=problem)
            self.retries += 1
            self.sleep(delay)
            waited += delay


def _host(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port else url.host


def _cause(exc: BaseException) -> str:
    """The innermost reason of a transport error, e.g. "[Errno 111] Connection refused"."""
    for _ in range(10):  # chains are short; never follow a cycle
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return str(exc) or type(exc).__name__


def _status_message(what: str, response: httpx.Response) -> str:
    return status_message(what, response.status_code, response.content)


def make_http_client(base_url: str, api_key: str, timeout: float,
                     transport: httpx.BaseTransport | None = None, *,
                     verify: ssl.SSLContext | None = None) -> httpx.Client:
    """The client for Nebuly: OS trust store unless `verify` is given (see syncd.net).

    HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY apply (httpx reads them; the proxy's
    own connections verify with the same context).
    """
    from syncd import __version__

    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": f"syncd/{__version__}"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        transport=transport,
        verify=verify if verify is not None else trust_context(),
    )
