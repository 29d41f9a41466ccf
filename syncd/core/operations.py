"""Approve and rollback, planned by the same rules as a run.

`approve` does not re-derive who is due: it takes what a `--force` run would do
now (policy.decide) and keeps the part the stored plan blocked, so it applies
exactly the changes the planner would, to the entries the planner picks.
`rollback` inverts a run's record against Nebuly's roster as the planner
indexes it (the same id rule, the same choice among case variants).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from syncd.core.ids import id_key
from syncd.core.model import Action, Change, NebulyUser
from syncd.core.plan import Plan, index_roster, is_active

# (action, before, after) as a run recorded it: before is None for an insert,
# after is None for a delete.
RecordedChange = tuple[str, NebulyUser | None, NebulyUser | None]


@dataclass(frozen=True, slots=True)
class Operation:
    """The writes an approve or a rollback makes, and who it leaves alone and why."""

    plan: Plan
    skipped: tuple[tuple[str, str], ...] = ()  # (end_user, why)


def approvable(blocked: Sequence[RecordedChange], forced: Plan,
               desired_keys: Iterable[str], actual: Iterable[NebulyUser],
               today: date) -> Operation:
    """The part of a blocked plan still due: the changes of the kinds it blocked that
    `forced` (what a --force run would apply now) still makes, as it would make them."""
    due: dict[tuple[str, str], Change | NebulyUser] = {}
    for kind, changes in ((Action.DEACTIVATE, forced.deactivations),
                          (Action.UPDATE, forced.updates),
                          (Action.REACTIVATE, forced.reactivations)):
        for change in changes:
            due[(kind, id_key(change.end_user))] = change
    for user in forced.deletes:
        due[(Action.DELETE, id_key(user.end_user))] = user
    present = set(desired_keys)
    index, _ = index_roster(actual)
    picked: dict[str, list[Change]] = {Action.DEACTIVATE: [], Action.UPDATE: [],
                                       Action.REACTIVATE: []}
    deletes: list[NebulyUser] = []
    skipped: list[tuple[str, str]] = []
    for action, before, after in blocked:
        subject = before or after
        assert subject is not None
        key = id_key(subject.end_user)
        found = due.pop((action, key), None)
        if isinstance(found, Change):
            picked[action].append(found)
        elif found is not None:
            deletes.append(found)
        elif action in (Action.UPDATE, Action.REACTIVATE):
            skipped.append((subject.end_user, "no longer due: the sources or Nebuly changed"))
        else:
            skipped.append((subject.end_user, _why_not_due(key, present, index, today)))
    return Operation(Plan(updates=tuple(picked[Action.UPDATE]),
                          reactivations=tuple(picked[Action.REACTIVATE]),
                          deactivations=tuple(picked[Action.DEACTIVATE]),
                          deletes=tuple(deletes)), tuple(skipped))


def _why_not_due(key: str, present: set[str], index: Mapping[str, NebulyUser],
                 today: date) -> str:
    if key in present:
        return "back in the sources"
    current = index.get(key)
    if current is None:
        return "no longer in Nebuly"
    if not is_active(current, today):
        return "already deactivated"
    return ("no longer due: unreadable this run, not owned, in its grace period, "
            "or the policy changed")


def undo(recorded: Sequence[RecordedChange], actual: Iterable[NebulyUser],
         force: bool = False) -> Operation:
    """Restore every user a run changed to the values it had before.

    Users changed again since that run are skipped (their later change would be
    lost) unless `force`. Users the run inserted are deleted: before it they
    did not exist. A user the run deleted is inserted again.
    """
    actual = list(actual)
    index, _ = index_roster(actual)
    held = {u.end_user for u in actual}
    inserts: list[NebulyUser] = []
    updates: list[Change] = []
    deletes: list[NebulyUser] = []
    skipped: list[tuple[str, str]] = []
    for action, before, after in recorded:
        subject = after or before
        assert subject is not None
        current = index.get(id_key(subject.end_user))
        if action == Action.OVERWRITE:
            skipped.append((subject.end_user, "existed before that run, with values it did "
                            "not read; restore them by hand"))
        elif after is None:  # the run deleted this user
            # Exactly that entry: a case variant Nebuly also holds (and syncd left
            # alone) is another entry, not the deleted one back.
            if before is not None and before.end_user not in held:
                inserts.append(before)
            else:
                skipped.append((subject.end_user, "exists again"))
        elif current is None:
            skipped.append((subject.end_user, "no longer in Nebuly"))
        elif current != _as_held(after, current) and not force:
            skipped.append((subject.end_user, "changed since that run (use --force)"))
        elif before is None:  # the run inserted this user
            deletes.append(current)
        else:
            updates.append(Change(current, _as_held(before, current)))
    return Operation(Plan(inserts=tuple(inserts), updates=tuple(updates),
                          deletes=tuple(deletes)), tuple(skipped))


def _as_held(user: NebulyUser, current: NebulyUser) -> NebulyUser:
    """`user` under the id spelling Nebuly holds (update matches on end_user)."""
    return NebulyUser(current.end_user, user.tags, user.active_from, user.active_to)
