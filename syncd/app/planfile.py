"""Plans as JSON (for --plan-out) and as text (for --dry-run): what an admin reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from syncd.app.paint import PLAIN, Painter
from syncd.core.model import Change, NebulyUser
from syncd.core.plan import Plan
from syncd.core.text import escape_json_text
from syncd.run.orchestrator import RunReport
from syncd.run.state import write_json_atomic

__all__ = ["plan_json", "plan_lines", "print_plan", "report_json", "write_json_atomic",
           "write_plan_file"]


def _changes(changes: tuple[Change, ...]) -> list[dict[str, Any]]:
    return [{"end_user": c.end_user, "before": c.before.to_json(), "after": c.after.to_json()}
            for c in changes]


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "counts": plan.counts(),
        "insert": [u.to_json() for u in plan.inserts],
        "update": _changes(plan.updates),
        "reactivate": _changes(plan.reactivations),
        "deactivate": _changes(plan.deactivations),
        "delete": [u.end_user for u in plan.deletes],
    }


def report_json(report: RunReport) -> dict[str, Any]:
    doc: dict[str, Any] = {"run_id": report.run_id, "today": report.today.isoformat(),
                           "dry_run": report.dry_run, "status": report.status}
    if report.guarded is not None:
        doc["plan"] = plan_json(report.guarded.allowed)
        doc["blocked"] = plan_json(report.guarded.blocked)
        doc["guard_trips"] = [{"guard": t.guard, "message": t.message}
                              for t in report.guarded.trips]
    return doc


def write_plan_file(path: Path, report: RunReport) -> None:
    """--plan-out: the plan as JSON for scripts and tickets, which admins also `cat`.

    JSON's escapes are lossless, so control and bidi characters from Nebuly or the
    directory are written as `\\u009b`, `\\u202e` (C0 always was): every JSON reader
    gets exactly the id Nebuly holds, and a terminal shows the escape instead of
    obeying it or drawing `moc.evil@ann` backwards. Letters (Zürich, 東京) stay as
    they are, as in `syncd preview --format json`."""
    write_json_atomic(path, report_json(report), escape=escape_json_text)


def _tags(user: NebulyUser) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(user.tags.items()))


def _diff(change: Change) -> str:
    before, after = change.before, change.after
    parts = []
    for key in sorted(set(before.tags) | set(after.tags)):
        old, new = before.tags.get(key), after.tags.get(key)
        if old != new:
            parts.append(f"{key}: {old or '(none)'} -> {new or '(none)'}")
    for name in ("active_from", "active_to"):
        old_d, new_d = getattr(before, name), getattr(after, name)
        if old_d != new_d:
            parts.append(f"{name}: {old_d or '(none)'} -> {new_d or '(none)'}")
    return ", ".join(parts)


def plan_lines(plan: Plan) -> list[str]:
    """One line per user a plan changes, with what changes: what an admin reviews."""
    lines = [f"  + insert      {user.end_user}  {_tags(user)}  active_from={user.active_from}"
             for user in plan.inserts]
    for label, changes in (("update", plan.updates), ("reactivate", plan.reactivations),
                           ("deactivate", plan.deactivations)):
        lines += [f"  ~ {label:<11} {change.end_user}  {_diff(change)}" for change in changes]
    lines += [f"  - delete      {user.end_user}" for user in plan.deletes]
    return lines


# A plan longer than this many lines repeats its summary at the end, where the
# reader of a long list (or of `tail`) is.
REPEAT_SUMMARY_AFTER = 20


def _summary_line(report: RunReport) -> str:
    assert report.guarded is not None
    if report.dry_run:
        counts = report.guarded.allowed.counts()
        verb = "Would apply"
    else:  # what Nebuly accepted
        fields = report.summary()
        counts = {a: fields.get(f, 0) for a, f in (
            ("insert", "inserted"), ("update", "updated"), ("deactivate", "deactivated"),
            ("reactivate", "reactivated"), ("delete", "deleted"), ("unchanged", "unchanged"))}
        verb = "Applied"
    return (f"{verb}: {counts['insert']} insert, {counts['update']} update, "
            f"{counts['deactivate']} deactivate, {counts['reactivate']} reactivate, "
            f"{counts['delete']} delete; {counts['unchanged']} unchanged")


def print_plan(report: RunReport, out: TextIO, paint: Painter = PLAIN) -> None:
    """The plan as text. Ids and tag values come from Nebuly and the directory: every
    control and bidi character in them is escaped, so none reaches the terminal; the
    painter colours the lines by kind when the output is a terminal."""
    if report.guarded is None:
        return
    summary = _summary_line(report)
    lines = plan_lines(report.guarded.allowed)
    blocked = report.guarded.blocked
    if blocked.size:
        lines.append(f"Blocked by a guard ({blocked.size}):")
        lines += [f"  ! {trip.message}" for trip in report.guarded.trips]
        # Tags shown: "all 37 are in Legal" must be visible before approving.
        lines += [f"  x deactivate  {c.end_user}  {_tags(c.before)}"
                  for c in blocked.deactivations]
        for label, changes in (("update", blocked.updates),
                               ("reactivate", blocked.reactivations)):
            lines += [f"  x {label:<11} {c.end_user}  {_diff(c)}" for c in changes]
        lines += [f"  x delete      {u.end_user}  {_tags(u)}" for u in blocked.deletes]
    waiting = report.guarded.planned.waiting
    if waiting:
        lines.append(f"Waiting out the departure grace period ({len(waiting)}): missing from "
                     "the sources, not deactivated yet")
        lines += [f"  . grace       {end_user}" for end_user in waiting]
    if report.pending_plan:
        lines.append(f"Blocked changes wait as plan {report.pending_plan}: see `syncd status`")
    repeat = [summary] if len(lines) > REPEAT_SUMMARY_AFTER else []
    paint.write(out, [summary, *lines, *repeat])
