"""Fixtures for the Okta source tests: the Okta stand-in and source configs.

Test modules import what they use (`from tests.conftest_okta import okta_server, okta`).

The org ("acme"): 1,500 users; statuses by index: i % 50 == 49 SUSPENDED,
i % 97 == 96 DEPROVISIONED (not listed by /users), i % 61 == 60 STAGED,
i % 43 == 42 LOCKED_OUT and i % 37 == 36 PASSWORD_EXPIRED (both still have
access). Groups: pilot users 0-99, sales users 90-149. App `0oaagent`:
users 200-209 directly, plus group pilot; user 5 is also assigned directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from standins.okta.data import App, Org, make_users, user_id
from standins.okta.server import OktaIdentity, OktaStandin
from syncd.sources.okta.config import OktaSourceConfig
from tests.conftest import CANARY_OKTA_TOKEN, OKTA_PRIVATE_KEY, OKTA_PUBLIC_KEY

N_USERS = 1500
PILOT, SALES, APP = "00gpilot", "00gsales", "0oaagent"
APP_DIRECT = [*range(200, 210), 5]
CLIENT_ID = "0oaservice1"
ASSIGNED = "2025-03-01T10:00:00.000Z"


def status(i: int) -> str:
    for every, name in ((50, "SUSPENDED"), (97, "DEPROVISIONED"), (61, "STAGED"),
                        (43, "LOCKED_OUT"), (37, "PASSWORD_EXPIRED")):
        if i % every == every - 1:
            return name
    return "ACTIVE"


def eligible(i: int) -> bool:
    return status(i) in ("ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "RECOVERY")


def logins(indexes: range | list[int] | set[int]) -> set[str]:
    return {f"user{i}@acme.example" for i in indexes if eligible(i)}


def acme() -> Org:
    users = make_users(N_USERS, {i: status(i) for i in range(N_USERS) if status(i) != "ACTIVE"})
    groups = {PILOT: [user_id(i) for i in range(100)],
              SALES: [user_id(i) for i in range(90, 150)]}
    apps = {APP: App(users=[user_id(i) for i in APP_DIRECT], groups=[PILOT], assigned=ASSIGNED)}
    return Org(users, groups, apps)


@dataclass(frozen=True)
class Okta:
    standin: OktaStandin
    private_key_file: Path

    def config(self, **overrides: Any) -> OktaSourceConfig:
        """A valid API-token config against the stand-in; overrides win.

        `oauth=True` swaps the token for the service app's client_id and key.
        """
        data: dict[str, Any] = {
            "name": "okta", "type": "okta", "org_url": self.standin.org_url,
            "api_token": CANARY_OKTA_TOKEN, "ca_file": str(self.standin.ca_file),
            "end_user": "{profile.email}", "page_size": 100, "max_retry_wait": "5s",
            "tags": {"department": "{profile.department}", "region": "{profile.countryCode}"},
        }
        if overrides.pop("oauth", False):
            del data["api_token"]
            data |= {"client_id": CLIENT_ID, "private_key_file": str(self.private_key_file)}
        data.update(overrides)
        return OktaSourceConfig.model_validate(data)


@pytest.fixture(scope="session")
def okta_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Okta]:
    base = tmp_path_factory.mktemp("okta")
    key_file = base / "service-app.pem"
    key_file.write_text(OKTA_PRIVATE_KEY, encoding="utf-8")
    identity = OktaIdentity(api_token=CANARY_OKTA_TOKEN, client_id=CLIENT_ID,
                            public_key=OKTA_PUBLIC_KEY)
    with OktaStandin(acme(), identity, tls_dir=base / "tls") as standin:
        yield Okta(standin, key_file)


@pytest.fixture
def okta(okta_server: Okta) -> Iterator[Okta]:
    """The shared stand-in with counters and faults cleared before and after the test."""
    okta_server.standin.reset()
    yield okta_server
    okta_server.standin.reset()
