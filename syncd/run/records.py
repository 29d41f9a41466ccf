"""What a sync leaves in state_dir: its run record, a blocked plan, the grace memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from syncd.config.model import SyncdConfig
from syncd.core.merge import MergedRoster
from syncd.core.model import Action, NebulyUser
from syncd.core.plan import Missing, next_missing
from syncd.core.policy import GuardedPlan
from syncd.nebuly.wire import Roster
from syncd.run.apply import ApplyResult
from syncd.run.inputs import plan_policy
from syncd.run.state import StateDir, StoredPlan


def keep_sync_records(state: StateDir, run_id: str, config: SyncdConfig, merged: MergedRoster,
                      roster: Roster, guarded: GuardedPlan, result: ApplyResult, today: date,
                      missing: dict[str, Missing], now: datetime, logger: Any) -> str | None:
    """Write the run's record first (rollback must stay possible), then a blocked
    plan, then the grace memory, which only a run that wrote cleanly may advance.
    Returns the id of the plan left for approval, if any. Raises OSError."""
    if result.changes:
        state.save_run(run_id, result.changes)
    pending = None
    if guarded.blocked.size:
        pending = _save_pending(state, run_id, config, guarded, now, logger)
    if not result.aborted:
        protected = merged.protected_ids | roster.unusable_ids
        state.save_missing(next_missing(merged.users, roster.users, plan_policy(config), today,
                                        missing, protected))
    return pending


def _save_pending(state: StateDir, run_id: str, config: SyncdConfig, guarded: GuardedPlan,
                  now: datetime, logger: Any) -> str:
    blocked = guarded.blocked
    changes: tuple[tuple[str, NebulyUser, NebulyUser | None], ...] = ()
    for action, kind in ((Action.DEACTIVATE, blocked.deactivations),
                         (Action.UPDATE, blocked.updates),
                         (Action.REACTIVATE, blocked.reactivations)):
        changes += tuple((action.value, c.before, c.after) for c in kind)
    changes += tuple((Action.DELETE.value, u, None) for u in blocked.deletes)
    # The same blocked changes as a plan still pending keep that plan and its id:
    # an hourly daemon must not turn the id in yesterday's alert into "no plan".
    pending = state.list_plans()
    for plan in pending:
        if not plan.expired(now) and _same(plan.changes, changes):
            logger.warning("plan.pending", plan_id=plan.plan_id, users=len(changes),
                           since=plan.created_at.isoformat(timespec="seconds"),
                           approve=config.command_hint(f"approve {plan.plan_id}"))
            return plan.plan_id
    # Different changes: the newest plan replaces older ones (an hourly daemon would
    # otherwise pile up one per run, each stale). A replaced id stays approvable:
    # it applies what it held that is still due.
    for older in pending:
        state.supersede(older, run_id)
    state.save_plan(StoredPlan(
        run_id, now, now + timedelta(seconds=config.policy.plan_expiry),
        "; ".join(t.message for t in guarded.trips), changes))
    logger.warning("plan.pending", plan_id=run_id, users=len(changes),
                   approve=config.command_hint(f"approve {run_id}"),
                   **({"supersedes": [p.plan_id for p in pending]} if pending else {}))
    return run_id


def _same(a: Sequence[tuple[str, NebulyUser, NebulyUser | None]],
          b: Sequence[tuple[str, NebulyUser, NebulyUser | None]]) -> bool:
    def key(change: tuple[str, NebulyUser, NebulyUser | None]) -> tuple[str, str]:
        return change[0], change[1].end_user
    return sorted(a, key=key) == sorted(b, key=key)
