"""Executes a Plan against Nebuly: batched, per-user error isolation, the only dry-run branch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from syncd.core.model import NebulyUser, id_key
from syncd.core.plan import Plan
from syncd.nebuly.client import WriteOutcome

ACTIONS = ("insert", "update", "reactivate", "deactivate", "delete")


class RosterWriter(Protocol):
    """Writes that never raise: a Nebuly outage comes back as WriteOutcome.aborted."""

    write_calls: int

    def insert(self, users: Sequence[NebulyUser]) -> WriteOutcome: ...
    def update(self, users: Sequence[NebulyUser]) -> WriteOutcome: ...
    def delete(self, end_users: Sequence[str]) -> WriteOutcome: ...


@dataclass(frozen=True, slots=True)
class Failure:
    action: str
    end_user: str
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    failures: tuple[Failure, ...] = ()
    write_calls: int = 0
    # Set when Nebuly became unusable mid-apply; what was not sent is in `failures`.
    aborted: str | None = None
    dry_run: bool = False
    # (action, before, after) for every user that was changed: the run's record.
    changes: tuple[tuple[str, NebulyUser | None, NebulyUser | None], ...] = ()
    # Inserts Nebuly did not take because the user may exist: the caller re-reads
    # them (see settle.py) and never overwrites them blindly.
    unconfirmed: tuple[NebulyUser, ...] = ()
    # The ids of those an attempt answered with an error may have inserted.
    uncertain: frozenset[str] = frozenset()
    # (action, before, after) of failed updates Nebuly may have applied all the
    # same (an answer lost): the caller re-reads them, to record what landed.
    in_doubt: tuple[tuple[str, NebulyUser | None, NebulyUser], ...] = ()


def apply_plan(writer: RosterWriter, plan: Plan, dry_run: bool = False) -> ApplyResult:
    if dry_run:
        return ApplyResult(dry_run=True)
    calls_before = writer.write_calls
    applied = dict.fromkeys(ACTIONS, 0)
    failures: list[Failure] = []
    changes: list[tuple[str, NebulyUser | None, NebulyUser | None]] = []
    aborted: str | None = None
    unconfirmed: list[NebulyUser] = []
    uncertain: set[str] = set()
    in_doubt: list[tuple[str, NebulyUser | None, NebulyUser]] = []

    # One stream of update calls for every kind of change that uses the update
    # verb: fewest calls (ceil(n / batch_size)) whatever the mix.
    by_action: dict[str, str] = {}
    befores: dict[str, NebulyUser | None] = {}
    update_stream: list[NebulyUser] = []
    for action, changes_of_kind in (("update", plan.updates),
                                    ("reactivate", plan.reactivations),
                                    ("deactivate", plan.deactivations)):
        for change in changes_of_kind:
            by_action[id_key(change.end_user)] = action
            befores[id_key(change.end_user)] = change.before
            update_stream.append(change.after)

    steps: list[tuple[str, Sequence[NebulyUser]]] = [
        ("insert", plan.inserts), ("update", update_stream)]
    for step, users in steps:
        if not users:
            continue
        targets = {id_key(u.end_user): u for u in users}
        if aborted:
            failures += [Failure(by_action.get(k, step), u.end_user, f"not sent: {aborted}")
                         for k, u in targets.items()]
            continue
        outcome = writer.insert(users) if step == "insert" else writer.update(users)
        aborted = outcome.aborted
        unconfirmed += [targets[id_key(u)] for u in outcome.unconfirmed]
        if step == "insert":
            uncertain.update(id_key(u) for u in outcome.uncertain)
        else:
            in_doubt += [(by_action[key], befores[key], targets[key])
                         for key in map(id_key, outcome.uncertain)]
        for end_user in outcome.applied:
            key = id_key(end_user)
            action = by_action.get(key, step)
            applied[action] += 1
            changes.append((action, befores.get(key), targets.get(key)))
        failures += [Failure(by_action.get(id_key(u), step), u, reason)
                     for u, reason in outcome.failed]

    if plan.deletes:
        ids = [u.end_user for u in plan.deletes]
        if aborted:
            failures += [Failure("delete", u, f"not sent: {aborted}") for u in ids]
        else:
            outcome = writer.delete(ids)
            aborted = outcome.aborted
            applied["delete"] += len(outcome.applied)
            deleted = {id_key(u) for u in outcome.applied}
            changes += [("delete", u, None) for u in plan.deletes
                        if id_key(u.end_user) in deleted]
            failures += [Failure("delete", u, r) for u, r in outcome.failed]

    return ApplyResult(applied, tuple(failures), writer.write_calls - calls_before,
                       aborted, False, tuple(changes), tuple(unconfirmed), frozenset(uncertain),
                       tuple(in_doubt))
