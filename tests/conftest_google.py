"""Fixtures for the Google source tests: the Google stand-in and source configs.

Test modules import what they use (`from tests.conftest_google import google_server, google`).

The account: 1,200 users in org units /Engineering, /Engineering/Platform,
/Sales, /Sales/EMEA, /Finance (by i % 5), users 1000-1009 in /SalesOps (a
sibling whose name starts like /Sales). Suspended: i % 50 == 49; archived:
i % 71 == 70. Groups: ai-pilot (users 0-49, nested ai-pilot-eng), ai-pilot-eng
(users 300-319, nested ai-pilot again: a cycle), everyone (the whole customer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from standins.google.data import Group, Workspace, google_id, make_users
from standins.google.server import GoogleStandin, ServiceAccount
from syncd.sources.google.config import GoogleSourceConfig
from tests.conftest import GOOGLE_PRIVATE_KEY, GOOGLE_PUBLIC_KEY

N_USERS = 1200
ADMIN = "admin@example.com"
PILOT, PILOT_ENG, EVERYONE = "ai-pilot@example.com", "ai-pilot-eng@example.com", \
    "everyone@example.com"
SALES_OPS = range(1000, 1010)


def suspended(i: int) -> bool:
    return i % 50 == 49


def archived(i: int) -> bool:
    return i % 71 == 70


def emails(indexes: range | set[int] | list[int]) -> set[str]:
    return {f"user{i}@example.com" for i in indexes if not suspended(i) and not archived(i)}


def unit(i: int) -> str:
    if i in SALES_OPS:
        return "/SalesOps"
    return ("/Engineering", "/Engineering/Platform", "/Sales", "/Sales/EMEA", "/Finance")[i % 5]


def account() -> ServiceAccount:
    return ServiceAccount(private_key=GOOGLE_PRIVATE_KEY, public_key=GOOGLE_PUBLIC_KEY,
                          admins=frozenset({ADMIN}))


def workspace(n: int = N_USERS) -> Workspace:
    users = make_users(n, suspended=frozenset(i for i in range(n) if suspended(i)),
                       archived=frozenset(i for i in range(n) if archived(i)))
    for i, user in enumerate(users):
        user["orgUnitPath"] = unit(i)
    groups = {
        PILOT: Group(PILOT, [google_id(i) for i in range(50)], [PILOT_ENG]),
        PILOT_ENG: Group(PILOT_ENG, [google_id(i) for i in range(300, 320)], [PILOT]),
        EVERYONE: Group(EVERYONE, whole_customer=True),
    }
    return Workspace(users, groups)


@dataclass(frozen=True)
class Google:
    standin: GoogleStandin
    key_file: Path

    def config(self, **overrides: Any) -> GoogleSourceConfig:
        """A valid delegated service-account config against the stand-in; overrides win."""
        data: dict[str, Any] = {
            "name": "google", "type": "google", "credentials_file": str(self.key_file),
            "subject": ADMIN, "api_endpoint": self.standin.url, "page_size": 200,
            "end_user": "{primaryEmail}", "max_retry_wait": "5s",
            "tags": {"department": "{organizations.0.department}", "unit": "{orgUnitPath}"},
        }
        data.update(overrides)
        return GoogleSourceConfig.model_validate(data)


def write_key_file(path: Path, standin: GoogleStandin) -> Path:
    path.write_text(json.dumps(standin.key_file()), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def google_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Google]:
    base = tmp_path_factory.mktemp("google")
    with GoogleStandin(workspace(), account()) as standin:
        yield Google(standin, write_key_file(base / "service-account.json", standin))


@pytest.fixture
def google(google_server: Google) -> Iterator[Google]:
    """The shared stand-in with counters and faults cleared before and after the test."""
    google_server.standin.reset()
    yield google_server
    google_server.standin.reset()
