"""The Nebuly stand-in server, exercised over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from standins.nebuly.server import Call, Fault, NebulyStandIn

REPO = Path(__file__).resolve().parents[1]
KEY = "test-key"
PLATFORM = "/api/external/platform-users"
ELIGIBLE = "/api/external/eligible-users"
# (path, insert verb, update verb): the flavours swap the verbs.
FLAVOURS = {
    "platform": (PLATFORM, "PUT", "POST"),
    "eligible": (ELIGIBLE, "POST", "PUT"),
}


def user(end_user: str, active_to: str | None = None, **tags: str) -> dict[str, Any]:
    return {
        "end_user": end_user,
        "tags": tags,
        "active_from": "2026-01-01",
        "active_to": active_to,
    }


def client_for(server: NebulyStandIn, key: str | None = KEY, timeout: float = 5) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


@pytest.fixture
def server() -> Iterator[NebulyStandIn]:
    with NebulyStandIn(KEY) as standin:
        yield standin


@pytest.fixture
def client(server: NebulyStandIn) -> Iterator[httpx.Client]:
    with client_for(server) as c:
        yield c


def ids(users: list[dict[str, Any]]) -> list[str]:
    return sorted(u["end_user"] for u in users)


# -- the API ---------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_insert_list_update_delete(client: httpx.Client, flavour: str) -> None:
    path, insert, update = FLAVOURS[flavour]
    sent = [user("a@x.com", region="eu"), user("b@x.com", region="us")]
    resp = client.request(insert, path, json={"users": sent})
    assert resp.status_code == 200
    assert resp.json() == {"users": sent}

    assert ids(client.get(path).json()["users"]) == ["a@x.com", "b@x.com"]

    changed = user("a@x.com", region="apac")
    resp = client.request(update, path, json={"users": [changed]})
    assert resp.json() == {"users": [changed]}

    resp = client.request("DELETE", path, json={"users": ["b@x.com", "nobody@x.com"]})
    assert resp.status_code == 200
    assert resp.json() == {"message": "deleted 1 users"}
    assert client.get(path).json() == {"users": [changed]}


def test_the_flavours_share_one_roster_with_swapped_verbs(client: httpx.Client) -> None:
    # POST on platform-users is an update, so a new user is not inserted ...
    assert client.post(PLATFORM, json={"users": [user("a@x.com")]}).json() == {"users": []}
    # ... while POST on eligible-users is an insert.
    assert client.post(ELIGIBLE, json={"users": [user("a@x.com")]}).json()["users"] != []
    assert ids(client.get(PLATFORM).json()["users"]) == ["a@x.com"]


def test_ids_are_case_sensitive(client: httpx.Client) -> None:
    client.put(PLATFORM, json={"users": [user("Ann@x.com"), user("ann@x.com")]})
    assert ids(client.get(PLATFORM).json()["users"]) == ["Ann@x.com", "ann@x.com"]


@pytest.mark.parametrize("key", [None, "wrong-key", "test-keyX"])
def test_bad_or_missing_key_is_401_and_never_echoed(server: NebulyStandIn, key: str | None) -> None:
    server.seed([user("a@x.com")])
    with client_for(server, key) as c:
        resp = c.get(PLATFORM)
        put = c.put(PLATFORM, json={"users": [user("b@x.com")]})
    assert resp.status_code == 401 == put.status_code
    assert resp.json() == {"detail": "invalid api key"}
    if key is not None:
        assert key not in resp.text
        assert key not in str(resp.headers)
    assert ids(server.users()) == ["a@x.com"]


def test_invalid_users_are_skipped_and_the_rest_applied(client: httpx.Client) -> None:
    good = user("ok@x.com", active_to="2026-06-30", dept="it")
    bad: list[Any] = [
        user(""),
        user("   "),
        {"end_user": 7, "tags": {}, "active_from": "2026-01-01"},
        {"end_user": "notags@x.com", "active_from": "2026-01-01"},
        {**user("tagint@x.com"), "tags": {"level": 3}},
        {**user("nofrom@x.com"), "active_from": None},
        {**user("shortdate@x.com"), "active_from": "2026-1-1"},
        {**user("stamp@x.com"), "active_from": "2026-01-01T00:00:00Z"},
        {**user("baddate@x.com"), "active_from": "2026-02-30"},
        {**user("badto@x.com"), "active_to": "tomorrow"},
        "just-a-string",
    ]
    resp = client.put(PLATFORM, json={"users": [*bad, good]})
    assert resp.status_code == 200
    assert resp.json() == {"users": [good]}
    assert client.get(PLATFORM).json() == {"users": [good]}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"users": {"end_user": "a"}}', b'{"people": []}', b""],
)
@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_malformed_write_body_is_400(client: httpx.Client, method: str, body: bytes) -> None:
    resp = client.request(method, PLATFORM, content=body)
    assert resp.status_code == 400
    assert "detail" in resp.json()


def test_delete_rejects_non_string_ids(server: NebulyStandIn, client: httpx.Client) -> None:
    server.seed([user("a@x.com")])
    resp = client.request("DELETE", PLATFORM, json={"users": [{"end_user": "a@x.com"}]})
    assert resp.status_code == 400
    assert ids(server.users()) == ["a@x.com"]


def test_update_replaces_the_whole_record(server: NebulyStandIn, client: httpx.Client) -> None:
    server.seed([user("a@x.com", active_to="2026-03-01", region="eu", dept="it")])
    replacement = {"end_user": "a@x.com", "tags": {"role": "dev"}, "active_from": "2026-02-01"}
    client.post(PLATFORM, json={"users": [replacement]})
    assert server.users() == [{**replacement, "active_to": None}]


@pytest.mark.parametrize(
    ("mode", "status", "applied", "expected_tag"),
    [("omit", 200, [], "old"), ("409", 409, None, "old"), ("upsert", 200, ["a@x.com"], "new")],
)
def test_insert_of_an_existing_user(
    mode: Any, status: int, applied: list[str] | None, expected_tag: str
) -> None:
    with NebulyStandIn(KEY, existing_insert=mode) as server, client_for(server) as c:
        server.seed([user("a@x.com", v="old")])
        resp = c.put(PLATFORM, json={"users": [user("a@x.com", v="new"), user("b@x.com")]})
        assert resp.status_code == status
        by_id = {u["end_user"]: u for u in server.users()}
    assert by_id["a@x.com"]["tags"] == {"v": expected_tag}
    if applied is None:  # the whole request failed: b was not inserted either
        assert "detail" in resp.json()
        assert "b@x.com" not in by_id
    else:
        assert ids(resp.json()["users"]) == sorted([*applied, "b@x.com"])
        assert "b@x.com" in by_id


@pytest.mark.parametrize(
    ("mode", "status", "applied"),
    [("omit", 200, []), ("404", 404, None), ("upsert", 200, ["new@x.com"])],
)
def test_update_of_a_missing_user(mode: Any, status: int, applied: list[str] | None) -> None:
    with NebulyStandIn(KEY, missing_update=mode) as server, client_for(server) as c:
        server.seed([user("a@x.com", v="old")])
        resp = c.post(PLATFORM, json={"users": [user("a@x.com", v="new"), user("new@x.com")]})
        assert resp.status_code == status
        by_id = {u["end_user"]: u for u in server.users()}
    if applied is None:
        assert by_id["a@x.com"]["tags"] == {"v": "old"}
        assert "new@x.com" not in by_id
    else:
        assert by_id["a@x.com"]["tags"] == {"v": "new"}
        assert ids(resp.json()["users"]) == sorted([*applied, "a@x.com"])
        assert sorted(by_id) == sorted({"a@x.com", *applied})


def test_batches_over_max_batch_are_413_and_not_applied() -> None:
    with NebulyStandIn(KEY, max_batch=2) as server, client_for(server) as c:
        three = [user("a@x.com"), user("b@x.com"), user("c@x.com")]
        assert c.put(PLATFORM, json={"users": three}).status_code == 413
        assert c.request("DELETE", PLATFORM, json={"users": ["a", "b", "c"]}).status_code == 413
        assert server.users() == []
        assert c.put(PLATFORM, json={"users": three[:2]}).status_code == 200
        assert ids(server.users()) == ["a@x.com", "b@x.com"]


def test_unknown_path_is_404_and_wrong_method_405(client: httpx.Client) -> None:
    assert client.get("/api/external/users").status_code == 404
    resp = client.patch(PLATFORM, json={"users": []})
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "PUT", "POST", "DELETE"}


def test_timestamps_mode_returns_dates_as_timestamps() -> None:
    with NebulyStandIn(KEY, timestamps=True) as server, client_for(server) as c:
        server.seed([user("a@x.com", active_to="2026-05-01")])
        got = c.get(PLATFORM).json()["users"][0]
    assert got["active_from"] == "2026-01-01T00:00:00Z"
    assert got["active_to"] == "2026-05-01T00:00:00Z"
    assert server.users()[0]["active_from"] == "2026-01-01"  # stored as dates


def _exchange(conn: socket.socket, reader: Any, request: bytes) -> tuple[int, bytes]:
    """Send one request on an open connection and read exactly one response."""
    conn.sendall(request)
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, reader.read(length)


def test_one_connection_serves_many_requests_even_after_rejections(
    server: NebulyStandIn,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    body = msgspec.json.encode({"users": [user("a@x.com")]})
    put = (
        f"PUT {PLATFORM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {{key}}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    get = f"GET {PLATFORM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    with (
        socket.create_connection((host, int(port)), timeout=5) as conn,
        conn.makefile("rb") as reader,
    ):
        # The rejected request's body must be consumed, not read as the next request.
        assert _exchange(conn, reader, put.replace(b"{key}", b"nope"))[0] == 401
        assert _exchange(conn, reader, put.replace(b"{key}", KEY.encode()))[0] == 200
        status, listed = _exchange(conn, reader, get.encode())
    assert status == 200
    assert ids(msgspec.json.decode(listed)["users"]) == ["a@x.com"]


@pytest.mark.slow
def test_a_million_user_roster_lists_quickly(server: NebulyStandIn) -> None:
    server.seed([user(f"user{n}@example.com", dept=f"d{n % 50}") for n in range(1_000_000)])
    with client_for(server, timeout=60) as c:
        start = time.perf_counter()
        resp = c.get(PLATFORM)
        elapsed = time.perf_counter() - start
    assert resp.status_code == 200
    assert len(msgspec.json.decode(resp.content)["users"]) == 1_000_000
    assert elapsed < 15, f"GET of 1M users took {elapsed:.1f}s"


# -- calls -----------------------------------------------------------------


def test_calls_record_every_api_request(server: NebulyStandIn, client: httpx.Client) -> None:
    client.put(PLATFORM, json={"users": [user("a@x.com"), user("b@x.com")]})
    client.get(PLATFORM)
    client.request("DELETE", PLATFORM, json={"users": ["a@x.com"]})
    with client_for(server, "bad") as bad:
        bad.post(ELIGIBLE, json={"users": []})
    calls = server.calls
    assert [(c.method, c.path, c.status, c.n_users) for c in calls] == [
        ("PUT", PLATFORM, 200, 2),
        ("GET", PLATFORM, 200, 2),
        ("DELETE", PLATFORM, 200, 1),
        ("POST", ELIGIBLE, 401, 0),
    ]
    assert all(isinstance(c, Call) for c in calls)
    assert calls[0].at <= calls[-1].at
    assert server.write_calls() == 3
    server.reset_calls()
    assert server.calls == []
    assert server.write_calls() == 0


# -- faults ----------------------------------------------------------------


def test_status_fault_with_retry_after_then_normal(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(method="PUT", status=429, retry_after="2", times=2))
    body = {"users": [user("a@x.com")]}
    assert client.get(PLATFORM).status_code == 200  # other methods are not affected
    for _ in range(2):
        resp = client.put(PLATFORM, json=body)
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "2"
        assert "detail" in resp.json()
    assert server.users() == []  # a refused write applies nothing
    assert client.put(PLATFORM, json=body).status_code == 200
    assert [c.status for c in server.calls] == [200, 429, 429, 200]


def test_faults_are_consumed_in_order_and_forever_until_cleared(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(status=503), Fault(status=500))
    assert [client.get(PLATFORM).status_code for _ in range(3)] == [503, 500, 200]
    server.inject(Fault(status=502, times=-1))
    assert [client.get(PLATFORM).status_code for _ in range(5)] == [502] * 5
    server.clear_faults()
    assert client.get(PLATFORM).status_code == 200


def test_delay_fault_slows_the_answer_and_can_time_a_client_out(server: NebulyStandIn) -> None:
    server.inject(Fault(delay=0.3))
    with client_for(server) as c:
        start = time.perf_counter()
        assert c.get(PLATFORM).status_code == 200
        assert time.perf_counter() - start >= 0.3
    server.inject(Fault(method="GET", delay=2))
    with client_for(server, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        c.get(PLATFORM)


def test_drop_fault_closes_without_answer_or_applying(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(method="PUT", drop=True))
    with pytest.raises(httpx.TransportError):
        client.put(PLATFORM, json={"users": [user("a@x.com")]})
    assert server.users() == []
    assert server.calls[-1].status == 0
    assert server.write_calls() == 1
    assert client.get(PLATFORM).status_code == 200  # the server carries on


def test_reset_mid_body_breaks_the_response(server: NebulyStandIn, client: httpx.Client) -> None:
    server.seed([user(f"u{n}@x.com") for n in range(100)])
    server.inject(Fault(method="GET", reset_mid_body=True))
    with pytest.raises(httpx.TransportError):
        client.get(PLATFORM)
    assert client.get(PLATFORM).status_code == 200


def test_partial_fault_applies_and_returns_only_the_first_users(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(partial=1))
    sent = [user("a@x.com"), user("b@x.com"), user("c@x.com")]
    resp = client.put(PLATFORM, json={"users": sent})
    assert resp.json() == {"users": sent[:1]}
    assert ids(server.users()) == ["a@x.com"]
    assert server.calls[-1].n_users == 3


def test_apply_then_fail_applies_everything_but_reports_failure(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(apply_then_fail=502, retry_after="1"))
    resp = client.put(PLATFORM, json={"users": [user("a@x.com"), user("b@x.com")]})
    assert resp.status_code == 502
    assert resp.headers["Retry-After"] == "1"
    assert ids(server.users()) == ["a@x.com", "b@x.com"]


def test_omit_fault_lists_the_live_roster_without_those_users(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.seed([user("a@x.com"), user("b@x.com"), user("c@x.com")])
    server.inject(Fault(method="GET", omit=("b@x.com", "C@X.COM"), times=2))
    assert ids(client.get(PLATFORM).json()["users"]) == ["a@x.com", "c@x.com"]  # exact ids
    client.put(PLATFORM, json={"users": [user("d@x.com")]})
    # Computed from the roster at each GET: a write made since shows up.
    assert ids(client.get(PLATFORM).json()["users"]) == ["a@x.com", "c@x.com", "d@x.com"]
    assert ids(client.get(PLATFORM).json()["users"]) == ids(server.users())
    assert len(server.users()) == 4


def test_omit_fault_does_not_change_a_write(server: NebulyStandIn, client: httpx.Client) -> None:
    server.seed([user("a@x.com")])
    server.inject(Fault(omit=("a@x.com",)))
    resp = client.post(PLATFORM, json={"users": [user("a@x.com", region="EU")]})
    assert resp.json()["users"][0]["tags"] == {"region": "EU"}
    assert server.users()[0]["tags"] == {"region": "EU"}


def test_omit_fault_over_the_control_endpoint(server: NebulyStandIn, client: httpx.Client) -> None:
    server.seed([user("a@x.com"), user("b@x.com")])
    resp = client.post("/_standin/faults",
                       json={"faults": [{"method": "GET", "omit": ["a@x.com"]}]})
    assert resp.status_code == 200
    assert ids(client.get(PLATFORM).json()["users"]) == ["b@x.com"]
    assert ids(client.get(PLATFORM).json()["users"]) == ["a@x.com", "b@x.com"]


def test_raw_body_fault_sends_invalid_json(server: NebulyStandIn, client: httpx.Client) -> None:
    server.inject(Fault(body=b'{"users": [{"end_'))
    resp = client.get(PLATFORM)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


def test_faults_skip_requests_rejected_before_handling(
    server: NebulyStandIn, client: httpx.Client
) -> None:
    server.inject(Fault(status=503))
    with client_for(server, "bad") as bad:
        assert bad.get(PLATFORM).status_code == 401
    assert client.get("/nope").status_code == 404
    assert client.get(PLATFORM).status_code == 503


@pytest.mark.parametrize(
    "kwargs",
    [{"times": 0}, {"times": -2}, {"method": "PATCH"}, {"status": 42}, {"delay": -1}],
)
def test_invalid_faults_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault(**kwargs)


def test_stop_does_not_wait_for_a_delayed_request(server: NebulyStandIn) -> None:
    server.inject(Fault(delay=30))
    with client_for(server, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        c.put(PLATFORM, json={"users": [user("a@x.com")]})
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 5
    assert server.users() == []  # the delayed write was abandoned, not applied


# -- control endpoints -----------------------------------------------------


def test_control_endpoints(server: NebulyStandIn) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as ctl, client_for(server) as api:
        seeded = [user("a@x.com"), user("b@x.com")]
        assert ctl.put("/_standin/users", json={"users": seeded}).status_code == 200
        assert ctl.get("/_standin/users").json() == {"users": seeded}

        faults = [{"method": "GET", "status": 503, "retry_after": "1"}, {"body": "oops"}]
        assert ctl.post("/_standin/faults", json={"faults": faults}).status_code == 200
        resp = api.get(PLATFORM)
        assert (resp.status_code, resp.headers["Retry-After"]) == (503, "1")
        assert api.get(PLATFORM).content == b"oops"
        api.request("DELETE", PLATFORM, json={"users": ["a@x.com"]})

        calls = ctl.get("/_standin/calls").json()
        assert calls == {
            "calls": [
                {"method": "GET", "path": PLATFORM, "status": 503, "n_users": 0},
                {"method": "GET", "path": PLATFORM, "status": 200, "n_users": 0},
                {"method": "DELETE", "path": PLATFORM, "status": 200, "n_users": 1},
            ],
            "write_calls": 1,
        }
        assert ctl.delete("/_standin/calls").status_code == 200
        assert server.calls == []

        ctl.post("/_standin/faults", json={"faults": [{"status": 500, "times": -1}]})
        assert ctl.delete("/_standin/faults").status_code == 200
        assert api.get(PLATFORM).status_code == 200
        assert ids(server.users()) == ["b@x.com"]


def test_control_requests_are_not_recorded_and_consume_no_faults(server: NebulyStandIn) -> None:
    server.inject(Fault(status=500))
    with httpx.Client(base_url=server.url, timeout=5) as ctl:
        assert ctl.get("/_standin/users").status_code == 200
        assert ctl.get("/_standin/calls").status_code == 200
    assert server.calls == []
    with client_for(server) as api:
        assert api.get(PLATFORM).status_code == 500


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/_standin/faults", {"faults": [{"retry-after": "1"}]}, 400),
        ("POST", "/_standin/faults", {"faults": [{"times": "x"}]}, 400),
        ("POST", "/_standin/faults", {"faults": [{"body": 5}]}, 400),
        ("POST", "/_standin/faults", {"fault": {}}, 400),
        ("PUT", "/_standin/users", {"users": [{"tags": {}}]}, 400),
        ("PUT", "/_standin/users", {"users": "x"}, 400),
        ("GET", "/_standin/nothing", None, 404),
        ("POST", "/_standin/users", {"users": []}, 405),
    ],
)
def test_control_endpoints_reject_bad_requests(
    server: NebulyStandIn, method: str, path: str, body: Any, status: int
) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as ctl:
        assert ctl.request(method, path, json=body).status_code == status
    assert server.users() == []
    with client_for(server) as api:
        assert api.get(PLATFORM).status_code == 200  # no fault was queued


# -- persistence and CLI ---------------------------------------------------


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "roster.json"
    with NebulyStandIn(KEY, state_file=state) as first, client_for(first) as c:
        c.put(PLATFORM, json={"users": [user("a@x.com"), user("b@x.com")]})
        c.request("DELETE", PLATFORM, json={"users": ["b@x.com"]})
    assert state.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.json"]  # no temp files left

    with NebulyStandIn(KEY, state_file=state) as second, client_for(second) as c:
        assert ids(c.get(PLATFORM).json()["users"]) == ["a@x.com"]


def _start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "STANDIN_TEST_KEY": "cli-key", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.nebuly", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    prefix = "nebuly stand-in listening on "
    if not line.startswith(prefix):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"stand-in did not start: {line!r} {err!r}")
    return proc, line.removeprefix(prefix).strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(tmp_path: Path, sig: signal.Signals) -> None:
    state = tmp_path / "state.json"
    proc, url = _start_cli(
        tmp_path, "--api-key-env", "STANDIN_TEST_KEY", "--state", str(state), "--max-batch", "1"
    )
    try:
        with httpx.Client(base_url=url, timeout=5) as c:
            headers = {"Authorization": "Bearer cli-key"}
            resp = c.put(PLATFORM, json={"users": [user("a@x.com")]}, headers=headers)
            assert resp.json() == {"users": [user("a@x.com")]}
            two = {"users": [user("b@x.com"), user("c@x.com")]}
            assert c.put(PLATFORM, json=two, headers=headers).status_code == 413
            assert c.get(PLATFORM).status_code == 401
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == ""  # just the one listening line, already read
    assert err == ""  # no per-request log noise
    assert ids(msgspec.json.decode(state.read_bytes())["users"]) == ["a@x.com"]


def test_cli_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NEBULY_API_KEY"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "standins.nebuly", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "NEBULY_API_KEY" in result.stderr


def test_in_flight_counts_requests_held_by_a_delay() -> None:
    with NebulyStandIn(api_key="k") as server:
        server.inject(Fault(method="GET", delay=0.5))
        seen: list[int] = []

        def get() -> None:
            with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}) as c:
                c.get("/api/external/platform-users")

        worker = threading.Thread(target=get)
        worker.start()
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            if server.in_flight():
                seen.append(server.in_flight())
            time.sleep(0.01)
        worker.join()
        assert seen == [1]
        assert server.in_flight() == 0 and [c.method for c in server.calls] == ["GET"]
