"""Inserts Nebuly did not take because the user may already exist.

Nebuly's list can lag (a user added a second ago), and an insert can land and
still be answered with an error, then retried. Updating such a user blindly
would replace tags and dates nobody read, and stamp a user syncd does not own.
Instead: re-read the roster, and
- a user who now holds exactly what we inserted is our own insert (recorded as
  an insert, so rollback deletes him), if an attempt Nebuly answered with an
  error may have inserted him; a call answered without error that left him out
  met someone who was already there (perhaps our insert of an earlier run);
- anyone else is planned by the same rules as every run (ownership, tags syncd
  does not map kept), and only what that plan says is written;
- a user Nebuly neither took nor lists is a failure for this run: the next run
  tries again.
Updates whose answer was lost (Nebuly failed after the call) are re-read too: one
that landed is recorded, so rollback restores it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from syncd.config.model import SyncdConfig
from syncd.core.ids import id_key
from syncd.core.merge import MergedRoster
from syncd.core.model import Action
from syncd.core.plan import Missing, Plan, index_roster
from syncd.core.policy import without_destructive
from syncd.nebuly.client import NebulyClient
from syncd.nebuly.errors import NebulyError
from syncd.nebuly.wire import Roster
from syncd.run.apply import ApplyResult, Failure, apply_plan
from syncd.run.inputs import decide_run

Replan = Callable[[Roster, frozenset[str]], Plan]


def replan_by_run_rules(config: SyncdConfig, merged: MergedRoster, missing: dict[str, Missing],
                        today: date) -> Replan:
    """Plans users an insert met, against a fresh read, by the same rules as a run.
    Their destructive changes (if any) wait for the next run and its cap."""
    def replan(fresh: Roster, keys: frozenset[str]) -> Plan:
        wanted = replace(merged, users={k: u for k, u in merged.users.items() if k in keys})
        met = replace(fresh, users=[u for u in fresh.users if id_key(u.end_user) in keys])
        guarded = decide_run(config, wanted, met, today, missing, force=True)
        return without_destructive(guarded.allowed)
    return replan


def settle_unconfirmed(client: NebulyClient, result: ApplyResult, replan: Replan,
                       logger: Any) -> ApplyResult:
    try:
        fresh = client.list_users()
    except NebulyError as exc:
        failed = [Failure(Action.INSERT, u.end_user, f"Nebuly did not take the insert and "
                          f"could not be read again: {exc}") for u in result.unconfirmed]
        return replace(result, failures=(*result.failures, *failed), unconfirmed=(),
                       uncertain=frozenset(), in_doubt=(), aborted=result.aborted or str(exc))
    index, _ = index_roster(fresh.users)
    updated = [c for c in result.in_doubt if index.get(id_key(c[2].end_user)) == c[2]]
    found = {id_key(after.end_user) for _, _, after in updated}
    result = replace(result, failures=tuple(
        f for f in result.failures if f.action == Action.INSERT or id_key(f.end_user) not in found))
    landed = []
    existing: set[str] = set()
    failed = []
    for target in result.unconfirmed:
        key = id_key(target.end_user)
        current = index.get(key)
        if current is None:
            failed.append(Failure(Action.INSERT, target.end_user, "Nebuly did not take the "
                                  "insert and does not list the user; the next run tries again"))
        elif current == target and key in result.uncertain:
            landed.append(target)
        else:
            existing.add(key)
    follow = replan(fresh, frozenset(existing)) if existing else Plan()
    second = apply_plan(client, follow)
    if existing:
        logger.warning("apply.insert_met_existing", count=len(existing),
                       updated=sum(second.applied.values()),
                       detail="Nebuly already held these users though its list did not show "
                       "them; they were planned again from a fresh read")
    applied = {action: count + second.applied.get(action, 0)
               for action, count in result.applied.items()}
    applied[Action.INSERT] += len(landed)
    for action, _, _ in updated:
        applied[action] += 1
    return replace(
        result, applied=applied,
        failures=(*result.failures, *failed, *second.failures),
        write_calls=result.write_calls + second.write_calls,
        aborted=result.aborted or second.aborted,
        changes=(*result.changes, *updated, *((Action.INSERT.value, None, u) for u in landed),
                 *second.changes),
        unconfirmed=(), uncertain=frozenset(), in_doubt=())
