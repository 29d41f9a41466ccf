"""Operator controls: approve a blocked plan, roll a run back, list plans, preview mappings.

Each is a normal batched apply (with dry-run) built on the same pieces as a
sync run: read_desired, the Nebuly client, apply_plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from syncd import log
from syncd.config.model import SyncdConfig
from syncd.core.merge import MergedRoster
from syncd.core.model import Change, NebulyUser, id_key
from syncd.core.plan import Plan, plan
from syncd.nebuly.client import NebulyError, Roster, make_http_client
from syncd.run.apply import ApplyResult, apply_plan
from syncd.run.orchestrator import ExitCode, nebuly_client, new_run_id, plan_policy, read_desired
from syncd.run.state import StateDir, StateError
from syncd.sources.base import Source, SourceError
from syncd.sources.factory import build_source


@dataclass(frozen=True)
class OperatorResult:
    exit_code: ExitCode
    message: str
    plan: Plan = field(default_factory=Plan)
    skipped: tuple[tuple[str, str], ...] = ()  # (end_user, why)
    result: ApplyResult | None = None
    run_id: str | None = None


def _state(config: SyncdConfig) -> StateDir:
    if config.state_dir is None:
        raise StateError("this needs state_dir in the config (where runs and plans are kept)")
    return StateDir(config.state_dir)


@contextmanager
def _session(config: SyncdConfig, http: httpx.Client | None) -> Iterator[httpx.Client]:
    """One HTTP client for a whole command (read and write): the injected one, or ours."""
    if http is not None:
        yield http
        return
    key = config.nebuly.resolve_api_key()
    log.register_secret(key)
    with make_http_client(config.nebuly.url, key, config.nebuly.timeout) as own:
        yield own


def _finish(config: SyncdConfig, state: StateDir, plan: Plan, *, dry_run: bool, kind: str,
            of: str, skipped: list[tuple[str, str]], http: httpx.Client) -> OperatorResult:
    """Apply `plan`, record it as a run of its own (so it can be rolled back too)."""
    run_id = new_run_id(datetime.now(UTC))
    logger = log.get_logger().bind(run_id=run_id)
    result = apply_plan(nebuly_client(config, http), plan, dry_run=dry_run)
    if not dry_run and result.changes:
        state.save_run(run_id, result.changes, kind=kind, of=of)
    code = (ExitCode.NEBULY_FAILED if result.aborted else
            ExitCode.PARTIAL_FAILURE if result.failures else ExitCode.OK)
    for failure in result.failures:
        logger.warning("apply.user_failed", action=failure.action, end_user=failure.end_user,
                       reason=failure.reason)
    # A dry run reports what it would do; a real one what Nebuly accepted.
    counts = {k: v for k, v in plan.counts().items() if k != "unchanged"}
    if not dry_run:
        counts = dict(result.applied)
    level = logger.info if code == ExitCode.OK else logger.error
    level(f"{kind}.finished", of=of, dry_run=dry_run, exit_code=int(code),
          skipped=len(skipped), failed=len(result.failures), write_calls=result.write_calls,
          **counts)
    verb = "would change" if dry_run else "changed"
    message = (f"{kind} of {of}: {verb} {sum(counts.values())} users, "
               f"skipped {len(skipped)}, failed {len(result.failures)}")
    return OperatorResult(code, message, plan, tuple(skipped), result, run_id)


def approve(config: SyncdConfig, plan_id: str, *, dry_run: bool = False,
            sources: Sequence[Source] | None = None,
            http: httpx.Client | None = None) -> OperatorResult:
    """Apply exactly the blocked part of a plan, after checking those people are still gone."""
    with _session(config, http) as session:
        return _approve(config, plan_id, dry_run, sources, session)


def _approve(config: SyncdConfig, plan_id: str, dry_run: bool,
             sources: Sequence[Source] | None, http: httpx.Client) -> OperatorResult:
    state = _state(config)
    stored = state.load_plan(plan_id)
    if stored.expired(datetime.now(UTC)):
        return OperatorResult(ExitCode.CONFIG_ERROR, (
            f"plan {plan_id} expired at {stored.expires_at:%Y-%m-%d %H:%M} UTC "
            "(policy.plan_expiry); the next run will block again if the departures are real"))
    logger = log.get_logger()
    try:
        desired, _ = read_desired(config, sources or [build_source(s) for s in config.sources],
                                  logger)
    except SourceError as exc:
        return OperatorResult(ExitCode.SOURCE_FAILED, f"{exc}; nothing was applied")
    roster = _roster(config, http)
    if isinstance(roster, OperatorResult):
        return roster
    actual = {id_key(u.end_user): u for u in roster.users}
    # What a run would plan now (same protections, ownership, mode and grace):
    # only what it would still block may be approved.
    fresh = plan(desired.users, roster.users, plan_policy(config), datetime.now(UTC).date(),
                 desired.protected_ids | roster.unusable_ids, state.load_missing())
    due = {("deactivate", id_key(c.end_user)) for c in fresh.deactivations}
    due |= {("delete", id_key(u.end_user)) for u in fresh.deletes}
    deactivations: list[Change] = []
    deletes: list[NebulyUser] = []
    skipped: list[tuple[str, str]] = []
    for action, before, after in stored.changes:
        key = id_key(before.end_user)
        current = actual.get(key)
        if key in desired.users:
            skipped.append((before.end_user, "back in the sources"))
        elif current is None:
            skipped.append((before.end_user, "no longer in Nebuly"))
        elif current.active_to is not None and after is not None:
            skipped.append((before.end_user, "already deactivated"))
        elif (action, key) not in due:
            skipped.append((before.end_user, "no longer due: unreadable this run, not owned, "
                            "in its grace period, or the policy changed"))
        elif action == "delete":
            deletes.append(current)
        elif after is not None:
            target = NebulyUser(current.end_user, current.tags, current.active_from,
                                after.active_to)
            deactivations.append(Change(current, target))
    outcome = _finish(config, state, Plan(deactivations=tuple(deactivations),
                                          deletes=tuple(deletes)),
                      dry_run=dry_run, kind="approve", of=plan_id, skipped=skipped, http=http)
    if not dry_run and outcome.exit_code == ExitCode.OK:
        state.close_plan(plan_id, "approved")
    return outcome


def rollback(config: SyncdConfig, run_id: str, *, dry_run: bool = False, force: bool = False,
             http: httpx.Client | None = None) -> OperatorResult:
    """Restore the values every user had before `run_id` changed them (see _rollback)."""
    with _session(config, http) as session:
        return _rollback(config, run_id, dry_run, force, session)


def _rollback(config: SyncdConfig, run_id: str, dry_run: bool, force: bool,
              http: httpx.Client) -> OperatorResult:
    """Restore the values every user had before `run_id` changed them.

    Users changed again since that run are skipped (their later change would be
    lost) unless `force`. Users the run inserted are deleted: before it they
    did not exist.
    """
    state = _state(config)
    changes = state.load_run(run_id)
    roster = _roster(config, http)
    if isinstance(roster, OperatorResult):
        return roster
    actual = {id_key(u.end_user): u for u in roster.users}
    inserts: list[NebulyUser] = []
    updates: list[Change] = []
    deletes: list[NebulyUser] = []
    skipped: list[tuple[str, str]] = []
    for action, before, after in changes:
        subject = after or before
        assert subject is not None
        current = actual.get(id_key(subject.end_user))
        if action == "overwrite":
            skipped.append((subject.end_user, "existed before that run, with values it did "
                            "not read; restore them by hand"))
        elif after is None:  # the run deleted this user
            if current is None and before is not None:
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
    undo = Plan(inserts=tuple(inserts), updates=tuple(updates), deletes=tuple(deletes))
    return _finish(config, state, undo, dry_run=dry_run, kind="rollback", of=run_id,
                   skipped=skipped, http=http)


def _as_held(user: NebulyUser, current: NebulyUser) -> NebulyUser:
    """`user` under the id spelling Nebuly holds (update matches on end_user)."""
    return NebulyUser(current.end_user, user.tags, user.active_from, user.active_to)


def _roster(config: SyncdConfig, http: httpx.Client) -> Roster | OperatorResult:
    try:
        return nebuly_client(config, http).list_users()
    except NebulyError as exc:
        return OperatorResult(ExitCode.NEBULY_FAILED, f"{exc}; nothing was applied")


def preview(config: SyncdConfig, sources: Sequence[Source] | None = None) -> MergedRoster:
    """Who the sources say should have access, mapped, without contacting Nebuly.

    Raises SourceError.
    """
    merged, _ = read_desired(config, sources or [build_source(s) for s in config.sources],
                             log.get_logger())
    return merged
