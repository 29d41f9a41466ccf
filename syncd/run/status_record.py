"""What `syncd status` reads back: the last sync's outcome and failure streak, and
the daemon's next scheduled run. Two small JSON files in state_dir, written
atomically; a missing or unreadable one means "not known", never an error."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from syncd.run.report import RunReport
from syncd.run.state import StateDir, write_json_atomic

LAST_RUN = "last_run.json"
DAEMON = "daemon.json"
# Runs that did their job, with problems or not (docs/daemon.md): they end a streak.
COMPLETED = frozenset({"ok", "guard_tripped", "partial_failure"})


def record_run(state: StateDir, report: RunReport, logger: Any) -> None:
    """Keep the outcome of a sync (dry runs and locked-out runs do not count)."""
    now = datetime.now(UTC)
    previous = load(state, LAST_RUN) or {}
    completed = report.status in COMPLETED
    try:
        write_json_atomic(state.root / LAST_RUN, {
            "finished_at": now.isoformat(timespec="seconds"),
            "last_success_at": (now.isoformat(timespec="seconds") if completed
                                else previous.get("last_success_at")),
            "consecutive_failures": 0 if completed
            else int(previous.get("consecutive_failures") or 0) + 1,
            "summary": report.summary()})
    except (OSError, ValueError) as exc:
        logger.warning("state.write_failed", file=LAST_RUN, error=str(exc),
                       consequence="syncd status will not show this run")


def record_next_run(state: StateDir, next_run: datetime | None, schedule: str) -> None:
    """The daemon's next run, for `syncd status` (best effort: metrics also show it)."""
    with contextlib.suppress(OSError):
        write_json_atomic(state.root / DAEMON, {
            "pid": os.getpid(), "host": socket.gethostname(), "schedule": schedule,
            "next_run": next_run.isoformat(timespec="seconds") if next_run else None,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds")})


def load(state: StateDir, name: str) -> dict[str, Any] | None:
    try:
        doc = json.loads((state.root / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
