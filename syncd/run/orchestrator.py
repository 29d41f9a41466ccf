"""The one loop every command goes through: read -> GET -> plan -> guard -> apply -> record.

A sync, an approve and a rollback are intents of this loop, not parallel
implementations: they differ only in what they plan (the core's `decide`,
`approvable` or `undo`) and in what they record. Any read failure aborts before
anything is written: "could not read" never becomes "user left".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx

from syncd import log
from syncd.config.model import SyncdConfig
from syncd.config.security import warn_insecure_transports
from syncd.core.merge import MergedRoster
from syncd.core.operations import Operation, approvable, undo
from syncd.core.plan import Missing
from syncd.core.policy import GuardedPlan
from syncd.core.templates import template_problems
from syncd.memory import gc_paused
from syncd.nebuly.client import NebulyClient, make_http_client
from syncd.nebuly.errors import NebulyError
from syncd.nebuly.wire import Roster, decode_roster
from syncd.run.apply import ApplyResult, apply_plan
from syncd.run.inputs import MAX_LOGGED_PROBLEMS, decide_run, nebuly_client, read_desired
from syncd.run.intents import Approve, Failed, Intent, Rollback, Sync
from syncd.run.lock import StateLock, StateLocked
from syncd.run.records import keep_sync_records
from syncd.run.report import (
    ExitCode,
    OperatorResult,
    RunReport,
    SourceStats,
    new_run_id,
    operator_result,
    operator_summary,
    stopped_operator_result,
    stopped_sync_report,
    sync_report,
)
from syncd.run.settle import replan_by_run_rules, settle_unconfirmed
from syncd.run.state import StateDir, StateError
from syncd.run.status_record import record_run
from syncd.sources.base import Source, SourceError
from syncd.sources.factory import build_source

if TYPE_CHECKING:
    from syncd.sources.kinds import AnySourceConfig

SourceBuilder = Callable[["AnySourceConfig"], Source]

__all__ = ["ExitCode", "OperatorResult", "RunReport", "SourceStats", "approve", "preview",
           "rollback", "run_once"]


@dataclass
class _Context:
    """What the loop has learnt so far (for the report when it stops early)."""

    merged: MergedRoster = field(default_factory=lambda: MergedRoster({}))
    stats: list[SourceStats] = field(default_factory=list)
    roster: Roster = field(default_factory=lambda: Roster([]))
    missing: dict[str, Missing] = field(default_factory=dict)


def run_once(config: SyncdConfig, *, sources: Sequence[Source] | None = None,
             http: httpx.Client | None = None, today: date | None = None,
             dry_run: bool = False, force: bool = False,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.perf_counter,
             should_stop: Callable[[], bool] = lambda: False,
             build: SourceBuilder = build_source) -> RunReport:
    """One sync. Never raises for expected failures: the report says what happened.

    `should_stop` is polled between write batches (a daemon's SIGTERM): the batch in
    flight completes, the rest is left for the next run. `build` makes the sources
    when `sources` is not given (a daemon's keeps them between runs).
    """
    report = Orchestrator(config, sources=sources, http=http, today=today, sleep=sleep,
                          clock=clock, should_stop=should_stop,
                          build=build).execute(Sync(dry_run, force))
    assert isinstance(report, RunReport)
    return report


def approve(config: SyncdConfig, plan_id: str, *, dry_run: bool = False,
            sources: Sequence[Source] | None = None, http: httpx.Client | None = None,
            today: date | None = None) -> OperatorResult:
    """Apply exactly the blocked part of a plan that a --force run would still apply."""
    result = Orchestrator(config, sources=sources, http=http, today=today).execute(
        Approve(plan_id, dry_run))
    assert isinstance(result, OperatorResult)
    return result


def rollback(config: SyncdConfig, run_id: str, *, dry_run: bool = False, force: bool = False,
             http: httpx.Client | None = None) -> OperatorResult:
    """Restore the values every user had before `run_id` changed them."""
    result = Orchestrator(config, http=http).execute(Rollback(run_id, dry_run, force))
    assert isinstance(result, OperatorResult)
    return result


def preview(config: SyncdConfig, sources: Sequence[Source] | None = None) -> MergedRoster:
    """Who the sources say should have access, mapped, without contacting Nebuly.
    Raises SourceError."""
    warn_insecure_transports(config, log.get_logger())
    merged, _ = read_desired(config, sources or [build_source(s) for s in config.sources],
                             log.get_logger())
    return merged


class Orchestrator:
    def __init__(self, config: SyncdConfig, *, sources: Sequence[Source] | None = None,
                 http: httpx.Client | None = None, today: date | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.perf_counter,
                 should_stop: Callable[[], bool] = lambda: False,
                 build: SourceBuilder = build_source) -> None:
        now = datetime.now(UTC)
        self.config = config
        self.sources, self.build = sources, build
        self.http = http
        self.now = now
        self.today = today or now.date()
        self.run_id = new_run_id(now)
        self.sleep, self.clock, self.should_stop = sleep, clock, should_stop
        self.logger = log.get_logger().bind(run_id=self.run_id)
        self.state = StateDir(config.state_dir) if config.state_dir else None
        self.durations: dict[str, float] = {}
        self.t0 = clock()
        self.note = ""  # said after an operator command's result

    def execute(self, intent: Intent) -> RunReport | OperatorResult:
        if isinstance(intent, Sync):
            self.logger.info("sync.started", dry_run=intent.dry_run,
                             sources=[s.name for s in self.config.sources])
        warn_insecure_transports(self.config, self.logger)
        context = _Context()
        try:
            # A large run builds millions of objects that live until its end: the
            # cyclic GC would walk them again and again for nothing.
            with gc_paused(), self._locked(intent):
                return self._loop(intent, context)
        except Failed as failure:
            return self._failed(intent, failure, context)

    @contextmanager
    def _locked(self, intent: Intent) -> Iterator[None]:
        """Hold state_dir for the whole command; a dry run writes nothing and needs no lock."""
        if self.state is None or intent.dry_run:
            yield
            return
        holder = f"syncd {type(intent).__name__.lower()} {self.run_id}"
        try:
            with StateLock(self.state.root, holder, self.config.state_lock_wait):
                yield
        except StateLocked as exc:
            raise Failed("state_locked", ExitCode.STATE_LOCKED, str(exc)) from None
        except OSError as exc:
            raise Failed("config_error", ExitCode.CONFIG_ERROR,
                         f"state_dir {self.state.root}: {exc.strerror or exc}") from None

    # -- the loop --------------------------------------------------------------

    def _loop(self, intent: Intent, context: _Context) -> RunReport | OperatorResult:
        config = self.config
        reads_sources = not isinstance(intent, Rollback)
        try:
            if reads_sources and (problems := template_problems(config.sources)):
                raise ValueError(problems[0])  # named by its field, as validate names it
            api_key = config.nebuly.resolve_api_key()
            log.register_secret(api_key)
            trust = config.nebuly.trust()
            sources = self.sources
            if reads_sources and sources is None:
                sources = [self.build(s) for s in config.sources]
            if self.state is not None:
                # approve and rollback act on the files found there: refuse them
                self.state.check_safety(refuse=not isinstance(intent, Sync),
                                        logger=self.logger)
                if not intent.dry_run:
                    self.state.check_writable()
                context.missing = self.state.load_missing()
            elif not isinstance(intent, Sync):
                raise StateError("this needs state_dir in the config (where runs and plans "
                                 "are kept)")
            recorded = self._recorded(intent)
        except (ValueError, StateError) as exc:
            if not isinstance(intent, Sync):
                raise  # the command line names the bad file or field (exit 2)
            self.logger.error("config.invalid", error=str(exc))
            raise Failed("config_error", ExitCode.CONFIG_ERROR, str(exc)) from None

        if self.http is not None:
            return self._with_nebuly(intent, self.http, context, recorded, sources)
        with make_http_client(config.nebuly.url, api_key, config.nebuly.timeout,
                              verify=trust) as own:
            return self._with_nebuly(intent, own, context, recorded, sources)

    def _recorded(self, intent: Intent) -> Sequence[Any]:
        """The stored input of an operator intent: a blocked plan's or a run's changes."""
        assert self.state is not None or isinstance(intent, Sync)
        if isinstance(intent, Approve):
            assert self.state is not None
            stored = self.state.load_plan(intent.plan_id)
            if stored.expired(self.now):
                raise Failed("plan_expired", ExitCode.CONFIG_ERROR, (
                    f"plan {intent.plan_id} expired at {stored.expires_at:%Y-%m-%d %H:%M} UTC "
                    "(policy.plan_expiry); the next run will block again if the departures "
                    "are real"))
            if stored.superseded_by:
                self.note = (f"; plan {stored.plan_id} was superseded by "
                             f"{self.state.successor(stored)}, which stays pending: only what "
                             f"{stored.plan_id} held and is still due was applied")
            return stored.changes
        if isinstance(intent, Rollback):
            assert self.state is not None
            return self.state.load_run(intent.run_id)
        return ()

    def _read(self, sources: Sequence[Source], context: _Context) -> None:
        start = self.clock()
        try:
            context.merged, context.stats = read_desired(self.config, sources, self.logger,
                                                         self.clock)
        except SourceError as exc:
            self.logger.error("source.failed", source=exc.source, error=exc.message,
                              consequence="nothing was written this run")
            raise Failed("source_failed", ExitCode.SOURCE_FAILED, str(exc)) from None
        finally:
            self.durations["read"] = self.clock() - start

    def _with_nebuly(self, intent: Intent, http: httpx.Client, context: _Context,
                     recorded: Sequence[Any], sources: Sequence[Source] | None
                     ) -> RunReport | OperatorResult:
        client = nebuly_client(self.config, http, sleep=self.sleep,
                               should_stop=self.should_stop)
        # Nebuly's roster is fetched while the sources are read: the run's floor is the
        # slower of the two, not their sum. It is decoded once the read is over and
        # the source records are freed: decoded, it is about 2.5x its body, and on
        # top of the records it set a large run's peak memory (1M people: about
        # 1 GiB, against 0.8 without it). Nothing is written until both are
        # complete; a failed read or a failed GET still aborts the run.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nebuly-get") as pool:
            listing = pool.submit(self._get, client)
            if sources is not None:
                self._read(sources, context)  # on failure, the pool waits for the GET
            body = listing.result()
        context.roster = self._decode(body)
        if context.roster.unreadable:
            self.logger.warning("nebuly.unreadable_users", count=context.roster.unreadable)

        start = self.clock()
        guarded, operation = self._plan(intent, context, recorded)
        self.durations["plan"] = self.clock() - start
        to_apply = operation.plan if operation is not None else guarded.allowed

        start = self.clock()
        result = apply_plan(client, to_apply, dry_run=intent.dry_run)
        if result.unconfirmed or result.in_doubt:
            replan = replan_by_run_rules(self.config, context.merged, context.missing,
                                         self.today)
            result = settle_unconfirmed(client, result, replan, self.logger)
        self.durations["apply"] = self.clock() - start
        for failure in result.failures[:MAX_LOGGED_PROBLEMS]:
            self.logger.warning("apply.user_failed", action=failure.action,
                                end_user=failure.end_user, reason=failure.reason)
        if isinstance(intent, Sync):
            return self._record_sync(intent, context, guarded, result, client)
        assert operation is not None
        return self._record_operation(intent, operation, result)

    def _get(self, client: NebulyClient) -> bytes:
        start = self.clock()
        try:
            return client.fetch_users()
        except NebulyError as exc:
            raise self._nebuly_failed(exc) from None
        finally:
            self.durations["get"] = self.clock() - start

    def _decode(self, body: bytes) -> Roster:
        start = self.clock()
        try:
            return decode_roster(body)
        except NebulyError as exc:
            raise self._nebuly_failed(exc) from None
        finally:
            self.durations["get"] += self.clock() - start  # get_s: the GET and its decode

    def _nebuly_failed(self, exc: NebulyError) -> Failed:
        self.logger.error("nebuly.read_failed", error=str(exc),
                          consequence="nothing was written this run")
        return Failed("nebuly_failed", ExitCode.NEBULY_FAILED, str(exc))

    def _plan(self, intent: Intent, context: _Context, recorded: Sequence[Any]
              ) -> tuple[GuardedPlan, Operation | None]:
        """The core's answer for this intent: one set of rules for all of them."""
        merged, roster = context.merged, context.roster
        # People whose record was unreadable (in a source or in Nebuly's list) exist:
        # never insert, overwrite or deactivate them on the strength of a bad read.
        guarded = decide_run(self.config, merged, roster, self.today, context.missing,
                             force=not isinstance(intent, Sync) or intent.force)
        if isinstance(intent, Approve):
            return guarded, approvable(recorded, guarded.allowed, merged.users.keys(),
                                       roster.users, self.today)
        if isinstance(intent, Rollback):
            return guarded, undo(recorded, roster.users, force=intent.force)
        self._log_plan(guarded)
        return guarded, None

    def _log_plan(self, guarded: GuardedPlan) -> None:
        for trip in guarded.trips:
            self.logger.error("guard.tripped", guard=trip.guard, blocked=trip.blocked,
                              message=trip.message)
        planned = guarded.planned
        if planned.foreign:
            self.logger.warning("plan.foreign_users", count=len(planned.foreign),
                                example=planned.foreign[0])
        if planned.duplicate_ids:
            self.logger.warning(
                "plan.duplicate_ids", count=len(planned.duplicate_ids),
                example=planned.duplicate_ids[0],
                detail="Nebuly holds entries whose ids differ only in case; syncd manages one "
                "of each and leaves the others: remove them in Nebuly")

    # -- record ----------------------------------------------------------------

    def _record_sync(self, intent: Sync, context: _Context, guarded: GuardedPlan,
                     result: ApplyResult, client: NebulyClient) -> RunReport:
        pending, state_error = None, None
        if self.state is not None and not intent.dry_run:
            try:
                pending = keep_sync_records(
                    self.state, self.run_id, self.config, context.merged, context.roster,
                    guarded, result, self.today, context.missing, self.now, self.logger)
            except (OSError, StateError) as exc:  # StateError: a folder that is not one
                state_error = (f"state_dir {self.state.root}: "
                               f"{getattr(exc, 'strerror', None) or exc}")
                self.logger.error("state.write_failed", error=state_error,
                                  consequence="the changes above were applied but may not be "
                                  "recorded for rollback or approval")
        return self._finish(sync_report(
            self.run_id, self.today, intent.dry_run, merged=context.merged,
            stats=context.stats, nebuly_users=len(context.roster.users), guarded=guarded,
            result=result, pending_plan=pending, state_error=state_error,
            durations=self.durations, read_calls=client.read_calls))

    def _record_operation(self, intent: Approve | Rollback, operation: Operation,
                          result: ApplyResult) -> OperatorResult:
        kind, of = (("approve", intent.plan_id) if isinstance(intent, Approve)
                    else ("rollback", intent.run_id))
        assert self.state is not None
        if not intent.dry_run and result.changes:
            self.state.save_run(self.run_id, result.changes, kind=kind, of=of)
        summary = operator_summary(of, operation, result, dry_run=intent.dry_run)
        outcome = operator_result(kind, summary, operation, result, run_id=self.run_id,
                                  note=self.note)
        ok = outcome.exit_code == ExitCode.OK
        if isinstance(intent, Approve) and not intent.dry_run and ok:
            self.state.close_plan(intent.plan_id, "approved")
        level = self.logger.info if ok else self.logger.error
        level(f"{kind}.finished", **summary.fields())
        return outcome

    def _failed(self, intent: Intent, failure: Failed,
                context: _Context) -> RunReport | OperatorResult:
        if not isinstance(intent, Sync):
            return stopped_operator_result(failure.code, failure.message)
        if failure.code == ExitCode.STATE_LOCKED:
            self.logger.error("state.locked", error=failure.message)
        return self._finish(stopped_sync_report(
            self.run_id, self.today, intent.dry_run, status=failure.status, code=failure.code,
            error=failure.message, stats=context.stats, durations=self.durations,
            conflicts=len(context.merged.conflicts)))

    def _finish(self, report: RunReport) -> RunReport:
        report.durations["total"] = self.clock() - self.t0
        level = "info" if report.exit_code == ExitCode.OK else "error"
        getattr(self.logger, level)("sync.finished", **report.summary())
        if self.state is not None and not report.dry_run and report.status != "state_locked":
            record_run(self.state, report, self.logger)  # for `syncd status`
        return report
