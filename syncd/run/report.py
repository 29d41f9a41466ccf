"""What a run, an approve or a rollback reports: exit codes, the canonical summary,
and the functions that build a report from what the command did (pure: recording
it in state_dir and logging it is the orchestrator's last step)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum
from typing import Any

from syncd.core.merge import MergedRoster
from syncd.core.operations import Operation
from syncd.core.plan import Plan
from syncd.core.policy import GuardedPlan
from syncd.run.apply import ApplyResult


class ExitCode(IntEnum):
    OK = 0
    INTERNAL_ERROR = 1
    CONFIG_ERROR = 2
    SOURCE_FAILED = 3
    NEBULY_FAILED = 4
    GUARD_TRIPPED = 5
    PARTIAL_FAILURE = 6
    STATE_LOCKED = 7


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
    read_calls: int = 0

    def summary(self) -> dict[str, Any]:
        """The fields of the one canonical `sync.finished` event."""
        fields: dict[str, Any] = {"run_id": self.run_id, "status": self.status,
                                  "exit_code": int(self.exit_code), "dry_run": self.dry_run}
        if self.plan is not None:
            counts = self.plan.counts()
            if self.result is not None and not self.dry_run:
                counts.update(self.result.applied)
            held = self.guarded.blocked if self.guarded else Plan()
            if self.dry_run and self.guarded is not None:
                counts["deactivate"] = len(self.guarded.allowed.deactivations)
                counts["delete"] = len(self.guarded.allowed.deletes)
            fields |= {
                "inserted": counts["insert"], "updated": counts["update"],
                "deactivated": counts["deactivate"], "reactivated": counts["reactivate"],
                "deleted": counts["delete"], "unchanged": counts["unchanged"],
                # Changes a guard held back for approval (deactivations, deletes,
                # updates that take a mapped tag's value away).
                "blocked": held.size,
                "blocked_tag_removals": len(held.updates) + len(held.reactivations),
                "failed": len(self.result.failures) if self.result else 0,
                # Every HTTP write attempt, retries included: what Nebuly may have acted on.
                "write_calls": self.result.write_calls if self.result else 0,
                "read_calls": self.read_calls,
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


@dataclass(frozen=True, slots=True)
class OperatorSummary:
    """What an approve or a rollback of `of` changed (or would change, dry), counted once
    for both its message and its `approve.finished` / `rollback.finished` event."""

    of: str
    dry_run: bool
    exit_code: ExitCode
    skipped: int
    failed: int
    write_calls: int
    changed: tuple[tuple[str, int], ...]  # (action, users), in the event's order

    @property
    def users(self) -> int:
        return sum(users for _, users in self.changed)

    def fields(self) -> dict[str, Any]:
        """The fields of the finished event."""
        return {"of": self.of, "dry_run": self.dry_run, "exit_code": int(self.exit_code),
                "skipped": self.skipped, "failed": self.failed,
                "write_calls": self.write_calls, **dict(self.changed)}


@dataclass(frozen=True)
class OperatorResult:
    """What `approve` or `rollback` did (or would do, dry)."""

    exit_code: ExitCode
    message: str
    plan: Plan = field(default_factory=Plan)
    skipped: tuple[tuple[str, str], ...] = ()  # (end_user, why)
    result: ApplyResult | None = None
    run_id: str | None = None
    summary: OperatorSummary | None = None  # None: stopped before applying anything


def new_run_id(now: datetime) -> str:
    # Sortable by time, unique enough for one daemon: 20261122T101500Z-3fa2c1.
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


# -- building reports --------------------------------------------------------------


def sync_report(run_id: str, today: date, dry_run: bool, *, merged: MergedRoster,
                stats: Sequence[SourceStats], nebuly_users: int, guarded: GuardedPlan,
                result: ApplyResult, pending_plan: str | None, state_error: str | None,
                durations: dict[str, float], read_calls: int) -> RunReport:
    """A sync that reached apply: the most serious outcome sets its status and exit code."""
    if state_error:
        status, code = "state_write_failed", ExitCode.CONFIG_ERROR
    elif result.aborted:
        status, code = "nebuly_failed", ExitCode.NEBULY_FAILED
    elif result.failures:
        status, code = "partial_failure", ExitCode.PARTIAL_FAILURE
    elif guarded.trips:
        status, code = "guard_tripped", ExitCode.GUARD_TRIPPED
    else:
        status, code = ("dry_run" if dry_run else "ok"), ExitCode.OK
    return RunReport(
        run_id, status, code, today, dry_run, state_error or result.aborted, tuple(stats),
        guarded.planned, guarded, result, len(merged.conflicts), durations, nebuly_users,
        pending_plan, len(merged.users), read_calls)


def stopped_sync_report(run_id: str, today: date, dry_run: bool, *, status: str,
                        code: ExitCode, error: str, stats: Sequence[SourceStats],
                        durations: dict[str, float], conflicts: int) -> RunReport:
    """A sync that stopped before writing anything (a failed read, a held lock)."""
    return RunReport(run_id, status, code, today, dry_run, error, tuple(stats),
                     durations=durations, conflicts=conflicts)


def operator_result(kind: str, summary: OperatorSummary, operation: Operation,
                    result: ApplyResult, *, run_id: str, note: str = "") -> OperatorResult:
    """What an approve or a rollback did, as `summary` counted it; `note` is said after it."""
    verb = "would change" if summary.dry_run else "changed"
    message = (f"{kind} of {summary.of}: {verb} {summary.users} users, "
               f"skipped {summary.skipped}, failed {summary.failed}{note}")
    return OperatorResult(summary.exit_code, message, operation.plan, operation.skipped,
                          result, run_id, summary)


def stopped_operator_result(code: ExitCode, message: str) -> OperatorResult:
    """An approve or a rollback that stopped before applying anything."""
    suffix = "" if code == ExitCode.CONFIG_ERROR else "; nothing was applied"
    return OperatorResult(code, f"{message}{suffix}")


def operator_summary(of: str, operation: Operation, result: ApplyResult, *,
                     dry_run: bool) -> OperatorSummary:
    """The counts of an approve or a rollback of `of`: its message and its finished event."""
    # A dry run reports what it would do; a real one what Nebuly accepted.
    changed = (result.applied if not dry_run else
               {k: v for k, v in operation.plan.counts().items() if k != "unchanged"})
    code = (ExitCode.NEBULY_FAILED if result.aborted else
            ExitCode.PARTIAL_FAILURE if result.failures else ExitCode.OK)
    return OperatorSummary(of, dry_run, code, len(operation.skipped), len(result.failures),
                           result.write_calls, tuple(changed.items()))
