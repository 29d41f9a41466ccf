"""What a command asks of the one loop (syncd.run.orchestrator): a sync, an approve of a
pending plan, or a rollback of a recorded run; and how a step of it stops."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.run.report import ExitCode


@dataclass(frozen=True, slots=True)
class Sync:
    dry_run: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True)
class Approve:
    plan_id: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Rollback:
    run_id: str
    dry_run: bool = False
    force: bool = False


Intent = Sync | Approve | Rollback


class Failed(Exception):
    """A step could not go on; the report says why, nothing more is written."""

    def __init__(self, status: str, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
