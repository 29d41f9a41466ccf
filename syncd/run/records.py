"""What a sync leaves in state_dir: its run record, a blocked plan, the grace memory."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from syncd.config.model import SyncdConfig
from syncd.core.merge import MergedRoster
from syncd.core.model import Action, NebulyUser
from syncd.core.plan import Missing, next_missing
from syncd.core.policy import GuardedPlan
from syncd.nebuly.client import Roster
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
    # The newest blocked plan replaces older ones: an hourly daemon would
    # otherwise pile up one per run, each stale.
    for older in state.list_plans():
        state.close_plan(older.plan_id, "superseded")
    state.save_plan(StoredPlan(
        run_id, now, now + timedelta(seconds=config.policy.plan_expiry),
        "; ".join(t.message for t in guarded.trips), changes))
    logger.warning("plan.pending", plan_id=run_id, users=len(changes),
                   approve=f"syncd approve {run_id}")
    return run_id
