"""The operator subcommands of `syncd`: plans, approve, runs, rollback, preview
(see registry.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `syncd --help` builds these parsers: keep it free of the engine's imports
    from datetime import datetime

    from syncd.app.paint import Painter
    from syncd.config.model import SyncdConfig
    from syncd.run.report import OperatorResult
    from syncd.run.state import StateDir, StoredPlan

_ACTIONS = ("insert", "update", "reactivate", "deactivate", "delete")
# The actions of a plan that take tags away from people who stay.
TAG_REMOVALS = ("update", "reactivate")
# The same words as the orchestrator's check, whichever command an admin runs first.
NEEDS_STATE_DIR = "this needs state_dir in the config (where runs and plans are kept)"


def plans(args: argparse.Namespace, config: SyncdConfig) -> int:
    problems: list[str] = []
    pending = read_only_state_dir(config).list_plans(problems)
    now = _now()
    rows = [plan_row(p, now) for p in pending]
    _warn(problems)
    return _print_rows(rows, args,
                       ("plan_id", "created_at", "expires_at", "deactivate", "delete",
                        "tag_removal"),
                       "no pending plans")


def runs(args: argparse.Namespace, config: SyncdConfig) -> int:
    return _print_rows(_run_rows(read_only_state_dir(config)), args,
                       ("run_id", "recorded_at", "kind", "summary"), "no recorded runs")


def approve(args: argparse.Namespace, config: SyncdConfig) -> int:
    from syncd.run import orchestrator

    return _report(orchestrator.approve(config, args.plan_id, dry_run=args.dry_run), args)


def rollback(args: argparse.Namespace, config: SyncdConfig) -> int:
    from syncd.run import orchestrator

    return _report(orchestrator.rollback(config, args.run_id, dry_run=args.dry_run,
                                         force=args.force), args)


def preview(args: argparse.Namespace, config: SyncdConfig) -> int:
    return _preview(config, args)


def read_only_state_dir(config: SyncdConfig) -> StateDir:
    """state_dir for a command that only reads it (plans, runs, status, explain).

    What it lists may have been planted if other users can write there: warned
    about, as every sync warns; approve and rollback, which act on it, refuse."""
    from syncd.log import get_logger
    from syncd.run.state import StateDir, StateError

    if config.state_dir is None:
        raise StateError(NEEDS_STATE_DIR)
    state = StateDir(config.state_dir)
    state.check_safety(refuse=False, logger=get_logger())
    return state


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def plan_row(plan: StoredPlan, now: datetime) -> dict[str, Any]:
    """One pending plan as `syncd plans` lists it; `syncd status` shows the same fields
    (all but `users`) and adds what the plan blocks."""
    counts = Counter(action for action, _, _ in plan.changes)
    return {"plan_id": plan.plan_id, "created_at": plan.created_at.isoformat(timespec="seconds"),
            "expires_at": plan.expires_at.isoformat(timespec="seconds"),
            "expired": plan.expired(now), "users": len(plan.changes),
            "deactivate": counts["deactivate"], "delete": counts["delete"],
            "tag_removal": sum(counts[a] for a in TAG_REMOVALS),
            "reason": plan.reason}


def _run_rows(state: StateDir) -> list[dict[str, Any]]:
    """Recorded runs; an unreadable run file is reported and skipped, not fatal."""
    from syncd.run.state import StateError

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for run_id in state.list_runs():
        try:
            meta, changes = state.load_run_with_meta(run_id)
            counts = Counter(action for action, _, _ in changes)
            rows.append({"run_id": run_id, **meta, "changes": len(changes),
                         **{a: counts[a] for a in _ACTIONS},
                         "summary": ", ".join(f"{counts[a]} {a}" for a in _ACTIONS
                                              if counts[a]) or "-"})
        except StateError as exc:
            problems.append(str(exc))
    _warn(problems)
    return rows


def _warn(problems: list[str]) -> None:
    from syncd.log import safe_text

    for problem in problems:
        sys.stderr.write(f"syncd: warning: {safe_text(problem)} (skipped)\n")


def _painter(args: argparse.Namespace) -> Painter:
    """Lines to stdout with every control and bidi character escaped (the values come
    from Nebuly, the directory or state files, and must not drive the terminal), in
    colour at a terminal."""
    from syncd.app.paint import painter

    return painter(args.color, sys.stdout)


def _table(args: argparse.Namespace, heading: str, rows: list[str]) -> None:
    """A heading and rows that start with values: coloured by no rule."""
    from syncd.app.paint import Style

    paint = _painter(args)
    sys.stdout.write(paint.line(heading, Style.HEADING) + "\n")
    sys.stdout.writelines(paint.plain(row) + "\n" for row in rows)


def _print_rows(rows: list[dict[str, Any]], args: argparse.Namespace,
                columns: tuple[str, ...], empty: str) -> int:
    if args.json:
        print(json.dumps(rows, indent=2))  # ensure_ascii: every control is escaped
    elif not rows:
        print(empty)
    else:
        _table(args, "  ".join(f"{c:<22}" for c in columns).rstrip(),
               ["  ".join(f"{row[c]!s:<22}" for c in columns).rstrip() for row in rows])
    return 0


def _report(outcome: OperatorResult, args: argparse.Namespace) -> int:
    from syncd.app.planfile import plan_lines
    from syncd.log import redact_text

    lines = [outcome.message, *plan_lines(outcome.plan)]
    lines += [f"  = skip        {end_user}: {why}" for end_user, why in outcome.skipped]
    if outcome.result is not None:
        lines += [f"  ! failed      {failure.end_user}: {failure.reason}"
                  for failure in outcome.result.failures]
    if outcome.run_id and outcome.result and outcome.result.changes:
        lines.append(f"recorded as run {outcome.run_id} (undo with `syncd rollback "
                     f"{outcome.run_id}`)")
    # A failure reason quotes the server's error text, which may echo the key back.
    _painter(args).write(sys.stdout, [redact_text(line) for line in lines])
    return int(outcome.exit_code)


def _preview(config: SyncdConfig, args: argparse.Namespace) -> int:
    from syncd.core.model import id_key
    from syncd.core.templates import template_problems
    from syncd.core.text import escape_json_text
    from syncd.run.orchestrator import ExitCode, preview

    problems = template_problems(config.sources)
    if problems:
        sys.stderr.write(f"syncd: {args.config} is not a usable config:\n")
        sys.stderr.writelines(f"  {p}\n" for p in problems)
        return int(ExitCode.CONFIG_ERROR)
    roster = preview(config)
    users = sorted(roster.users.values(), key=lambda u: u.end_user)
    if args.ids:
        wanted = {id_key(i) for i in args.ids}
        users = [u for u in users if id_key(u.end_user) in wanted]
    shown = users if args.limit <= 0 else users[:args.limit]
    if args.format == "json":
        # Readable non-ASCII names, but C1 and bidi characters escaped (C0 always is).
        print(escape_json_text(json.dumps([
            {"end_user": u.end_user, "tags": dict(u.tags),
             "active_from": u.active_from.isoformat() if u.active_from else None,
             "active_to": u.active_to.isoformat() if u.active_to else None,
             "sources": list(u.sources)} for u in shown], indent=2, ensure_ascii=False)))
        return 0
    width = max([len(u.end_user) for u in shown] + [8])
    lines = []
    for u in shown:
        tags = " ".join(f"{k}={v}" for k, v in sorted(u.tags.items()))
        lines.append(f"{u.end_user:<{width}}  {u.active_from or '(on insert)'!s:<11}  "
                     f"{u.active_to or '-'!s:<10}  {tags}")
    lines.append(f"({len(shown)} of {len(users)} users"
                 f"{'; use --limit 0 for all' if len(shown) < len(users) else ''})")
    _table(args, f"{'end_user':<{width}}  {'active_from':<11}  {'active_to':<10}  tags", lines)
    return 0
