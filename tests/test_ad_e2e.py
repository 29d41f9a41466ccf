"""Whole runs from the Samba AD DC into the Nebuly stand-in, with changes made on the DC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from standins.nebuly.server import NebulyStandIn
from syncd.config.model import load_config
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest_ad import ad_yaml
from tests.conftest_ldap import backend_fixture  # noqa: F401  (fixture "backend")
from tests.samba_dc import BASE, SambaDC

# Objects of this test's own, outside OU=People, removed afterwards: the shared
# population stays as every other AD test expects it.
OU = f"OU=Trial,{BASE}"
GROUP = f"CN=trial-pilot,{OU}"
PEOPLE = [f"t{i}" for i in range(6)]


def dn(name: str) -> str:
    return f"CN={name},{OU}"


@pytest.fixture(name="trial")
def trial_fixture(ad: SambaDC) -> Iterator[SambaDC]:
    # userAccountControl 544: a normal, enabled account that needs no password.
    users = "".join(f"dn: {dn(n)}\nchangetype: add\nobjectClass: user\nsAMAccountName: {n}\n"
                    f"mail: {n}@trial.example\ndepartment: Trial\nuserAccountControl: 544\n\n"
                    for n in PEOPLE)
    members = "".join(f"member: {dn(n)}\n" for n in PEOPLE[:5])
    ad.ldap_modify(f"dn: {OU}\nchangetype: add\nobjectClass: organizationalUnit\n\n{users}"
                   f"dn: {GROUP}\nchangetype: add\nobjectClass: group\n"
                   f"sAMAccountName: trial-pilot\n{members}\n")
    try:
        yield ad
    finally:
        ad.delete_tree(OU)


def test_disable_delete_and_group_removal_deactivate_exactly_those(
        trial: SambaDC, tmp_path: Path, standin: NebulyStandIn, backend: str) -> None:
    config = load_config(ad_yaml(tmp_path, trial, standin.url, backend=backend, base_dn=OU,
                                 groups=[GROUP]))
    first = run_once(config, today=date(2026, 12, 1))
    assert first.exit_code == ExitCode.OK, first.error
    assert {u["end_user"] for u in standin.users()} == {
        f"{n}@trial.example" for n in PEOPLE[:5]}  # t5 is not in the group

    # t0 is deleted, t1 disabled, t2 taken out of the group; t5 joins it.
    trial.ldap_modify(f"dn: {dn('t0')}\nchangetype: delete\n\n"
                      f"dn: {dn('t1')}\nchangetype: modify\nreplace: userAccountControl\n"
                      "userAccountControl: 546\n-\n\n"
                      f"dn: {GROUP}\nchangetype: modify\ndelete: member\nmember: {dn('t2')}\n-\n"
                      f"add: member\nmember: {dn('t5')}\n-\n\n")
    second = run_once(config, today=date(2026, 12, 2))
    assert second.exit_code == ExitCode.OK, second.error
    users = {u["end_user"]: u for u in standin.users()}
    ended = {user for user, record in users.items() if record.get("active_to")}
    assert ended == {"t0@trial.example", "t1@trial.example", "t2@trial.example"}
    assert "t5@trial.example" in users and not users["t5@trial.example"].get("active_to")
