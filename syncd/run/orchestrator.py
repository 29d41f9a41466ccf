"""One run: pull every source -> map -> GET Nebuly -> plan -> guards -> apply -> summary.

Any read failure aborts the run before anything is written: "could not read"
must never become "user left".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from typing import Any

import httpx

from syncd import log
from syncd.config.model import SyncdConfig
from syncd.core.mapping import MappedSource, SourceMapper
from syncd.core.merge import MergedRoster, cap_tag_values, merge
from syncd.core.model import NebulyUser
from syncd.core.plan import Missing, Plan, PlanPolicy, next_missing, plan
from syncd.core.policy import GuardedPlan, check
from syncd.core.templates import template_problems
from syncd.nebuly.client import NebulyClient, NebulyError, gc_paused, make_http_client
from syncd.nebuly.retry import RetryPolicy
from syncd.run.apply import ApplyResult, apply_plan
from syncd.run.state import StateDir, StateError, StoredPlan
from syncd.sources.base import Source, SourceError
from syncd.sources.factory import build_source

# Per-record problems beyond this many per source are counted, not logged one by one.
MAX_LOGGED_PROBLEMS = 50


class ExitCode(IntEnum):
    OK = 0
    INTERNAL_ERROR = 1
    CONFIG_ERROR = 2
    SOURCE_FAILED = 3
    NEBULY_FAILED = 4
    GUARD_TRIPPED = 5
    PARTIAL_FAILURE = 6


@dataclass(frozen=True, slots=True)
class SourceStats:
    name: str
    records: int
    users: int
    skipped: int
    excluded: int
    seconds: float


@dataclass(frozen=True)
class RunReport:
    run_id: str
    status: str
    exit_code: ExitCode
    today: date
    dry_run: bool = False
    error: str | None = None
    sources: tuple[SourceStats, ...] = ()
    plan: Plan | None = None
    guarded: GuardedPlan | None = None
    result: ApplyResult | None = None
    conflicts: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    nebuly_users: int = 0
    pending_plan: str | None = None
    desired_users: int = 0  # after merging: a person in two sources counts once

    def summary(self) -> dict[str, Any]:
        """The fields of the one canonical `sync.finished` event."""
        fields: dict[str, Any] = {"run_id": self.run_id, "status": self.status,
                                  "exit_code": int(self.exit_code), "dry_run": self.dry_run}
        if self.plan is not None:
            counts = self.plan.counts()
            if self.result is not None and not self.dry_run:
                counts.update(self.result.applied)
            blocked = self.guarded.blocked.destructive if self.guarded else 0
            if self.dry_run and self.guarded is not None:
                counts["deactivate"] = len(self.guarded.allowed.deactivations)
                counts["delete"] = len(self.guarded.allowed.deletes)
            fields |= {
                "inserted": counts["insert"], "updated": counts["update"],
                "deactivated": counts["deactivate"], "reactivated": counts["reactivate"],
                "deleted": counts["delete"], "unchanged": counts["unchanged"],
                "blocked": blocked,
                "failed": len(self.result.failures) if self.result else 0,
                "write_calls": self.result.write_calls if self.result else 0,
            }
        fields |= {
            "source_records": sum(s.records for s in self.sources),
            "skipped_records": sum(s.skipped for s in self.sources),
            "desired_users": self.desired_users,
            "nebuly_users": self.nebuly_users,
            "conflicts": self.conflicts,
        }
        if self.plan is not None and self.plan.waiting:
            fields["in_grace"] = len(self.plan.waiting)
        if self.pending_plan:
            fields["pending_plan"] = self.pending_plan
        fields |= {f"{phase}_s": round(sec, 3) for phase, sec in self.durations.items()}
        if self.error:
            fields["error"] = self.error
        return fields


def new_run_id(now: datetime) -> str:
    # Sortable by time, unique enough for one daemon: 20261122T101500Z-3fa2c1.
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def plan_policy(config: SyncdConfig) -> PlanPolicy:
    managed = frozenset(k for s in config.sources for k in s.tags)
    policy = config.policy
    owner = policy.owner_tag
    return PlanPolicy(
        mode=policy.mode,
        departed=policy.departed,
        managed_tag_keys=managed | ({owner.key} if owner else frozenset()),
        prune_tags=policy.prune_tags,
        owner_tag=(owner.key, owner.value) if owner else None,
        grace_runs=policy.grace_runs,
        # Dates are whole days; round a grace period up so "36h" means 2 days, not 1.
        grace_days=-int(-(policy.grace_period or 0) // 86400),
    )


def _read_sources(config: SyncdConfig, sources: Sequence[Source],
                  logger: Any, clock: Callable[[], float]
                  ) -> tuple[list[MappedSource], list[SourceStats]]:
    mapped: list[MappedSource] = []
    stats: list[SourceStats] = []
    for source_config, source in zip(config.sources, sources, strict=True):
        start = clock()
        read = source.read()  # raises SourceError
        result = SourceMapper(source_config, config.policy.id_case).map(read.records,
                                                                        read.problems)
        seconds = clock() - start
        problems = [*read.problems, *result.problems]
        for problem in problems[:MAX_LOGGED_PROBLEMS]:
            logger.warning("record.skipped", source=source.name, record=problem.origin,
                           reason=problem.message)
        for notice in result.notices[:MAX_LOGGED_PROBLEMS]:
            logger.warning("record.adjusted", source=source.name, record=notice.origin,
                           reason=notice.message)
        if len(problems) > MAX_LOGGED_PROBLEMS:
            logger.warning("record.skipped_more", source=source.name,
                           count=len(problems) - MAX_LOGGED_PROBLEMS)
        if not result.users and not source_config.allow_empty:
            raise SourceError(source.name, (
                f"read {len(read.records)} records but yielded no users; refusing to treat "
                "everyone as departed. Check the source, or set allow_empty: true"))
        stats.append(SourceStats(source.name, len(read.records), len(result.users),
                                 len(problems), result.excluded, seconds))
        logger.info("source.read", source=source.name, records=len(read.records),
                    users=len(result.users), skipped=len(problems), excluded=result.excluded,
                    duration_s=round(seconds, 3))
        mapped.append(result)
    return mapped, stats


def read_desired(config: SyncdConfig, sources: Sequence[Source], logger: Any,
                 clock: Callable[[], float] = time.perf_counter
                 ) -> tuple[MergedRoster, list[SourceStats]]:
    """Read every source completely, map and merge: who should have access. Raises SourceError."""
    mapped, stats = _read_sources(config, sources, logger, clock)
    merged = merge(mapped, config.policy.source_precedence)
    for key, tag, values in merged.conflicts[:MAX_LOGGED_PROBLEMS]:
        logger.debug("merge.conflict", end_user=key, tag=tag, values=dict(values))
    merged, capped = cap_tag_values(merged, config.sources)
    for cap in capped:
        logger.warning("tags.capped", tag=cap.tag, kept=list(cap.kept),
                       replaced=list(cap.replaced[:20]), users=cap.users)
    return merged, stats


def nebuly_client(config: SyncdConfig, http: httpx.Client, *,
                  sleep: Callable[[float], None] = time.sleep,
                  should_stop: Callable[[], bool] = lambda: False) -> NebulyClient:
    return NebulyClient(
        http, api=config.nebuly.api, batch_size=config.nebuly.batch_size,
        retry=RetryPolicy(max_retries=config.nebuly.max_retries,
                          max_total_wait=config.nebuly.max_retry_wait),
        sleep=sleep, should_stop=should_stop)


def run_once(
    config: SyncdConfig,
    *,
    sources: Sequence[Source] | None = None,
    http: httpx.Client | None = None,
    today: date | None = None,
    dry_run: bool = False,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunReport:
    """Run one sync. Never raises for expected failures: the report says what happened.

    `should_stop` is polled between write batches (a daemon's SIGTERM): the batch in
    flight completes, the rest is left for the next run.
    """
    # A large run builds millions of objects that live until its end: the cyclic
    # GC would walk them all again and again for nothing (reference counting still
    # frees memory as usual).
    with gc_paused():
        return _Run(config, today=today, dry_run=dry_run, force=force, sleep=sleep,
                    clock=clock, should_stop=should_stop).run(sources, http)


class _Run:
    def __init__(self, config: SyncdConfig, *, today: date | None, dry_run: bool, force: bool,
                 sleep: Callable[[float], None], clock: Callable[[], float],
                 should_stop: Callable[[], bool]) -> None:
        now = datetime.now(UTC)
        self.config = config
        self.today = today or now.date()
        self.run_id = new_run_id(now)
        self.dry_run = dry_run
        self.force = force
        self.sleep = sleep
        self.clock = clock
        self.should_stop = should_stop
        self.logger = log.get_logger().bind(run_id=self.run_id)
        self.state = StateDir(config.state_dir) if config.state_dir else None
        self.missing: dict[str, Missing] = {}
        self.durations: dict[str, float] = {}
        self.t0 = clock()

    def finish(self, report: RunReport) -> RunReport:
        report.durations["total"] = self.clock() - self.t0
        level = "info" if report.exit_code == ExitCode.OK else "error"
        getattr(self.logger, level)("sync.finished", **report.summary())
        return report

    def failed(self, status: str, code: ExitCode, error: str, **extra: Any) -> RunReport:
        return self.finish(RunReport(self.run_id, status, code, self.today, self.dry_run,
                                     error, durations=self.durations, **extra))

    def run(self, sources: Sequence[Source] | None, http: httpx.Client | None) -> RunReport:
        config, logger = self.config, self.logger
        logger.info("sync.started", dry_run=self.dry_run,
                    sources=[s.name for s in config.sources])
        try:
            # Reject a bad template before any I/O, naming its field as validate does.
            if problems := template_problems(config.sources):
                raise ValueError(problems[0])
            api_key = config.nebuly.resolve_api_key()
            log.register_secret(api_key)
            if sources is None:
                sources = [build_source(s) for s in config.sources]
            if self.state is not None:
                self.state.check_writable()
                self.missing = self.state.load_missing()
        except (ValueError, StateError) as exc:
            logger.error("config.invalid", error=str(exc))
            return self.failed("config_error", ExitCode.CONFIG_ERROR, str(exc))

        start = self.clock()
        try:
            merged, stats = read_desired(config, sources, logger, self.clock)
        except SourceError as exc:
            self.durations["read"] = self.clock() - start
            logger.error("source.failed", source=exc.source, error=exc.message,
                         consequence="nothing was written this run")
            return self.failed("source_failed", ExitCode.SOURCE_FAILED, str(exc))
        self.durations["read"] = self.clock() - start

        if http is not None:
            return self.sync(http, merged, stats)
        with make_http_client(config.nebuly.url, api_key, config.nebuly.timeout) as own:
            return self.sync(own, merged, stats)

    def sync(self, http: httpx.Client, merged: MergedRoster,
             stats: list[SourceStats]) -> RunReport:
        config, logger, clock = self.config, self.logger, self.clock
        client = nebuly_client(config, http, sleep=self.sleep, should_stop=self.should_stop)
        start = clock()
        try:
            roster = client.list_users()
        except NebulyError as exc:
            self.durations["get"] = clock() - start
            logger.error("nebuly.read_failed", error=str(exc),
                         consequence="nothing was written this run")
            return self.failed("nebuly_failed", ExitCode.NEBULY_FAILED, str(exc),
                               sources=tuple(stats), conflicts=len(merged.conflicts))
        self.durations["get"] = clock() - start
        if roster.unreadable:
            logger.warning("nebuly.unreadable_users", count=roster.unreadable)

        start = clock()
        policy = plan_policy(config)
        # People whose record was unreadable (in a source or in Nebuly's list) exist:
        # never insert, overwrite or deactivate them on the strength of a bad read.
        protected = merged.protected_ids | roster.unusable_ids
        the_plan = plan(merged.users, roster.users, policy, self.today, protected,
                        self.missing)
        guarded = check(the_plan, config.policy.max_deactivations, force=self.force)
        self.durations["plan"] = clock() - start
        for trip in guarded.trips:
            logger.error("guard.tripped", guard=trip.guard, blocked=trip.blocked,
                         message=trip.message)
        if the_plan.foreign:
            logger.warning("plan.foreign_users", count=len(the_plan.foreign),
                           example=the_plan.foreign[0])
        if the_plan.duplicate_ids:
            logger.warning("plan.duplicate_ids", count=len(the_plan.duplicate_ids),
                           example=the_plan.duplicate_ids[0],
                           detail="Nebuly holds entries whose ids differ only in case; syncd "
                           "manages one of each and leaves the others: remove them in Nebuly")

        start = clock()
        result = apply_plan(client, guarded.allowed, dry_run=self.dry_run)
        self.durations["apply"] = clock() - start
        for failure in result.failures[:MAX_LOGGED_PROBLEMS]:
            logger.warning("apply.user_failed", action=failure.action,
                           end_user=failure.end_user, reason=failure.reason)
        pending, state_error = None, None
        if self.state is not None and not self.dry_run:
            try:
                pending = self.keep_records(merged, roster.users, policy, protected, guarded,
                                            result)
            except OSError as exc:
                state_error = f"state_dir {self.state.root}: {exc.strerror or exc}"
                logger.error("state.write_failed", error=state_error,
                             consequence="the changes above were applied but may not be "
                             "recorded for rollback or approval")
        if state_error:
            status, code = "state_write_failed", ExitCode.CONFIG_ERROR
        elif result.aborted:
            status, code = "nebuly_failed", ExitCode.NEBULY_FAILED
        elif result.failures:
            status, code = "partial_failure", ExitCode.PARTIAL_FAILURE
        elif guarded.trips:
            status, code = "guard_tripped", ExitCode.GUARD_TRIPPED
        else:
            status, code = ("dry_run" if self.dry_run else "ok"), ExitCode.OK
        return self.finish(RunReport(
            self.run_id, status, code, self.today, self.dry_run, state_error or result.aborted,
            tuple(stats), the_plan, guarded, result, len(merged.conflicts), self.durations,
            len(roster.users), pending, len(merged.users)))

    def keep_records(self, merged: MergedRoster, actual: list[NebulyUser], policy: PlanPolicy,
                     protected: frozenset[str], guarded: GuardedPlan,
                     result: ApplyResult) -> str | None:
        """Write the run's record first (rollback must stay possible), then a blocked
        plan, then the grace memory, which only a run that wrote cleanly may advance."""
        assert self.state is not None
        if result.changes:
            self.state.save_run(self.run_id, result.changes)
        pending = self.save_pending(guarded) if guarded.blocked.destructive else None
        if not result.aborted:
            self.state.save_missing(next_missing(merged.users, actual, policy, self.today,
                                                 self.missing, protected))
        return pending

    def save_pending(self, guarded: GuardedPlan) -> str:
        assert self.state is not None
        blocked = guarded.blocked
        now = datetime.now(UTC)
        changes: tuple[tuple[str, NebulyUser, NebulyUser | None], ...] = tuple(
            ("deactivate", c.before, c.after) for c in blocked.deactivations)
        changes += tuple(("delete", u, None) for u in blocked.deletes)
        # The newest blocked plan replaces older ones: an hourly daemon would
        # otherwise pile up one per run, each stale.
        for older in self.state.list_plans():
            self.state.close_plan(older.plan_id, "superseded")
        self.state.save_plan(StoredPlan(
            self.run_id, now, now + timedelta(seconds=self.config.policy.plan_expiry),
            "; ".join(t.message for t in guarded.trips), changes))
        self.logger.warning("plan.pending", plan_id=self.run_id, users=len(changes),
                            approve=f"syncd approve {self.run_id}")
        return self.run_id
