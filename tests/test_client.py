"""The Nebuly client against the real stand-in server, including its failure modes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.core.model import NebulyUser
from syncd.nebuly.client import (
    NebulyAuthError,
    NebulyClient,
    NebulyError,
    NebulyUnavailable,
    decode_roster,
    make_http_client,
)
from syncd.nebuly.retry import RetryPolicy, parse_retry_after
from tests.conftest import CANARY_API_KEY

D = date(2026, 1, 1)


def user(i: int, dept: str = "Sales") -> NebulyUser:
    return NebulyUser(f"u{i}@x.com", {"department": dept}, D)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def http(standin: NebulyStandIn) -> Iterator[httpx.Client]:
    with make_http_client(standin.url, CANARY_API_KEY, timeout=2.0) as client:
        yield client


def client_for(http: httpx.Client, *, api: str = "platform-users", batch_size: int = 500,
               sleeps: Sleeps | None = None, max_wait: float = 60.0) -> NebulyClient:
    return NebulyClient(http, api=api, batch_size=batch_size,  # type: ignore[arg-type]
                        retry=RetryPolicy(max_retries=4, max_total_wait=max_wait),
                        sleep=sleeps if sleeps is not None else Sleeps())


@pytest.mark.parametrize("api", ["platform-users", "eligible-users"])
def test_both_flavours_insert_update_list_delete(standin: NebulyStandIn, http: httpx.Client,
                                                  api: str) -> None:
    client = client_for(http, api=api)
    assert client.insert([user(1), user(2)]).applied == ("u1@x.com", "u2@x.com")
    assert client.update([user(1, "Ops")]).applied == ("u1@x.com",)
    roster = {u.end_user: u for u in client.list_users().users}
    assert roster["u1@x.com"].tags == {"department": "Ops"}
    assert client.delete(["u2@x.com"]).applied == ("u2@x.com",)
    assert [u["end_user"] for u in standin.users()] == ["u1@x.com"]
    methods = [c.method for c in standin.calls if c.method != "GET"]
    assert methods == (["PUT", "POST", "DELETE"] if api == "platform-users"
                       else ["POST", "PUT", "DELETE"])


def test_batches_by_batch_size(standin: NebulyStandIn, http: httpx.Client) -> None:
    client = client_for(http, batch_size=3)
    outcome = client.insert([user(i) for i in range(7)])
    assert len(outcome.applied) == 7 and client.write_calls == 3 == standin.write_calls()


def test_429_honours_retry_after(standin: NebulyStandIn, http: httpx.Client) -> None:
    sleeps = Sleeps()
    standin.inject(Fault(method="PUT", status=429, retry_after="7", times=2))
    outcome = client_for(http, sleeps=sleeps).insert([user(1)])
    assert outcome.applied == ("u1@x.com",) and sleeps == [7.0, 7.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_backoff(standin: NebulyStandIn, http: httpx.Client,
                                     status: int) -> None:
    sleeps = Sleeps()
    standin.inject(Fault(method="GET", status=status))
    assert client_for(http, sleeps=sleeps).list_users().users == []
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_retry_budget_is_capped(standin: NebulyStandIn, http: httpx.Client) -> None:
    sleeps = Sleeps()
    standin.inject(Fault(method="GET", status=503, retry_after="30", times=-1))
    with pytest.raises(NebulyUnavailable, match="max_retry_wait") as err:
        client_for(http, sleeps=sleeps, max_wait=70).list_users()
    assert sleeps == [30.0, 30.0] and "HTTP 503" in str(err.value)


def test_timeout_and_dropped_connection_are_retried(standin: NebulyStandIn) -> None:
    standin.inject(Fault(method="PUT", delay=1.5), Fault(method="PUT", drop=True))
    with make_http_client(standin.url, CANARY_API_KEY, timeout=0.5) as http:
        client = client_for(http)
        outcome = client.insert([user(1)])
    # The delayed request may have been applied by the server after we gave up;
    # the retry then meets an existing user and converges through update.
    assert outcome.applied == ("u1@x.com",) and not outcome.failed
    assert client.retries == 2
    assert [u["end_user"] for u in standin.users()] == ["u1@x.com"]


def test_reset_mid_body_on_get_is_retried(standin: NebulyStandIn, http: httpx.Client) -> None:
    standin.seed([user(1).to_json()])
    standin.inject(Fault(method="GET", reset_mid_body=True))
    assert [u.end_user for u in client_for(http).list_users().users] == ["u1@x.com"]


def test_partial_success_leaves_inserts_unconfirmed_and_fails_updates_after_one_fallback(
        standin: NebulyStandIn, http: httpx.Client) -> None:
    standin.inject(Fault(method="PUT", partial=1))
    outcome = client_for(http).insert([user(1), user(2)])
    assert outcome.applied == ("u1@x.com",) and not outcome.failed
    # Not taken and not known to exist: the caller re-reads before doing anything else.
    assert outcome.unconfirmed == ("u2@x.com",)
    standin.inject(Fault(method="POST", partial=0), Fault(method="PUT", partial=0))
    outcome = client_for(http).update([user(3)])
    assert [u for u, _ in outcome.failed] == ["u3@x.com"]
    assert "neither the update nor the insert" in outcome.failed[0][1]


def test_insert_of_existing_user_is_never_turned_into_an_update(
        standin: NebulyStandIn, http: httpx.Client) -> None:
    standin.seed([user(1, "Old").to_json()])
    client = client_for(http)
    outcome = client.insert([user(1, "New"), user(2)])
    assert outcome.applied == ("u2@x.com",) and outcome.unconfirmed == ("u1@x.com",)
    assert {u["end_user"]: u["tags"]["department"] for u in standin.users()} == {
        "u1@x.com": "Old", "u2@x.com": "Sales"}
    assert client.write_calls == standin.write_calls() == 1


@pytest.mark.parametrize("mode", ["409", "upsert"])
def test_insert_conflict_modes(mode: str) -> None:
    with NebulyStandIn(api_key=CANARY_API_KEY, existing_insert=mode) as server:  # type: ignore[arg-type]
        server.seed([user(1, "Old").to_json()])
        with make_http_client(server.url, CANARY_API_KEY, 2.0) as http:
            client = client_for(http)
            outcome = client.insert([user(i, "New") for i in range(1, 5)])
        assert not outcome.failed and client.write_calls == server.write_calls()
        if mode == "409":  # the batch is split to find the one the server refuses
            assert sorted(outcome.applied) == ["u2@x.com", "u3@x.com", "u4@x.com"]
            assert outcome.unconfirmed == ("u1@x.com",)
            assert {u["end_user"]: u["tags"]["department"] for u in server.users()}[
                "u1@x.com"] == "Old"
        else:  # a server that upserts on insert: nothing a client can tell
            assert len(outcome.applied) == 4


@pytest.mark.parametrize("mode", ["omit", "404"])
def test_update_of_missing_user_converges_through_insert(mode: str) -> None:
    with NebulyStandIn(api_key=CANARY_API_KEY, missing_update=mode) as server:  # type: ignore[arg-type]
        with make_http_client(server.url, CANARY_API_KEY, 2.0) as http:
            outcome = client_for(http).update([user(1), user(2)])
        assert len(outcome.applied) == 2
        assert len(server.users()) == 2


def test_413_splits_the_batch() -> None:
    with NebulyStandIn(api_key=CANARY_API_KEY, max_batch=2) as server:
        with make_http_client(server.url, CANARY_API_KEY, 2.0) as http:
            client = client_for(http, batch_size=8)
            outcome = client.insert([user(i) for i in range(8)])
        assert len(outcome.applied) == 8 and len(server.users()) == 8
        # 1 (413) + 2 (413) + 4 accepted halves
        assert client.write_calls == 7


def test_ambiguous_failure_after_apply_is_retried_and_left_unconfirmed(
        standin: NebulyStandIn, http: httpx.Client) -> None:
    standin.inject(Fault(method="PUT", apply_then_fail=502))
    client = client_for(http)
    outcome = client.insert([user(1), user(2)])
    # The retry meets the users the first call inserted: the caller re-reads them.
    assert outcome.unconfirmed == ("u1@x.com", "u2@x.com") and not outcome.failed
    assert len(standin.users()) == 2
    assert client.write_calls == standin.write_calls() == 2


def test_invalid_json_roster_is_an_error_not_an_empty_roster(
        standin: NebulyStandIn, http: httpx.Client) -> None:
    standin.inject(Fault(method="GET", body=b'{"users": [ {"end_user": '))
    with pytest.raises(NebulyError, match="not valid JSON"):
        client_for(http).list_users()


def test_wrong_key_is_a_clear_error_without_the_key(standin: NebulyStandIn) -> None:
    with (make_http_client(standin.url, "wrong-key-" + CANARY_API_KEY[::-1], 2.0) as http,
          pytest.raises(NebulyAuthError, match="401") as err):
        client_for(http).list_users()
    assert CANARY_API_KEY[::-1] not in str(err.value)


def test_roster_decoding_tolerates_odd_shapes() -> None:
    body = (b'{"users": [{"end_user": "a@x.com", "tags": null, "active_from": '
            b'"2026-01-01T08:00:00Z", "active_to": null}, {"tags": {}}, '
            b'{"end_user": "b@x.com", "tags": {"n": 3}, "active_from": "garbage"},'
            b'{"end_user": "c@x.com", "extra": 1}]}')
    roster = decode_roster(body)
    assert [u.end_user for u in roster.users] == ["a@x.com", "c@x.com"]
    assert roster.users[0] == NebulyUser("a@x.com", {}, D, None)
    assert roster.unreadable == 2


def test_timestamps_from_nebuly_read_as_dates() -> None:
    with NebulyStandIn(api_key=CANARY_API_KEY, timestamps=True) as server:
        server.seed([user(1).to_json()])
        with make_http_client(server.url, CANARY_API_KEY, 2.0) as http:
            (got,) = client_for(http).list_users().users
    assert got == user(1)


def test_retry_after_forms() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("nonsense") is None
    assert parse_retry_after(None) is None
    from datetime import UTC, datetime
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 10:00:30 GMT", now) == 30.0
