"""The operator subcommands of `syncd`: plans, approve, runs, rollback, preview."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `syncd --help` builds these parsers: keep it free of the engine's imports
    from syncd.config import SyncdConfig
    from syncd.operator import OperatorResult


def add_parsers(sub: Any, with_config: Any) -> None:
    plans = with_config("plans", "list plans blocked by a guard and waiting for approval")
    plans.add_argument("--json", action="store_true", help="print JSON")
    approve = with_config("approve", "apply the blocked part of a plan (people still absent)")
    approve.add_argument("plan_id", metavar="PLAN_ID", help="from `syncd plans` or the log")
    runs = with_config("runs", "list recorded runs that changed something")
    runs.add_argument("--json", action="store_true", help="print JSON")
    rollback = with_config("rollback", "restore every user a run changed to its previous values")
    rollback.add_argument("run_id", metavar="RUN_ID", help="from `syncd runs` or the log")
    rollback.add_argument("--force", action="store_true",
                          help="also restore users changed again since that run")
    for p in (approve, rollback):
        p.add_argument("--dry-run", action="store_true",
                       help="show what it would do; write nothing")
    preview = with_config("preview", "show the Nebuly records the sources map to; no Nebuly call")
    preview.add_argument("--limit", type=int, default=20, help="rows to show (default 20; 0: all)")
    preview.add_argument("--id", dest="ids", action="append", default=[],
                         help="show only this end_user (repeatable)")
    preview.add_argument("--format", choices=["table", "json"], default="table")


def run(command: str, args: argparse.Namespace, config: SyncdConfig) -> int:
    from syncd import operator
    from syncd.engine import ExitCode
    from syncd.sources.base import SourceError
    from syncd.state import StateDir, StateError

    try:
        if command == "plans":
            return _print_rows(operator.pending_plans(config), args.json,
                               ("plan_id", "created_at", "expires_at", "deactivate", "delete"),
                               "no pending plans")
        if command == "runs":
            if config.state_dir is None:
                raise StateError("this needs state_dir in the config")
            state = StateDir(config.state_dir)
            rows = [{"run_id": r, "changes": len(state.load_run(r))} for r in state.list_runs()]
            return _print_rows(rows, args.json, ("run_id", "changes"), "no recorded runs")
        if command == "approve":
            return _report(operator.approve(config, args.plan_id, dry_run=args.dry_run))
        if command == "rollback":
            return _report(operator.rollback(config, args.run_id, dry_run=args.dry_run,
                                             force=args.force))
        if command == "preview":
            return _preview(config, args)
    except StateError as exc:
        sys.stderr.write(f"syncd: {exc}\n")
        return int(ExitCode.CONFIG_ERROR)
    except SourceError as exc:
        sys.stderr.write(f"syncd: {exc}\n")
        return int(ExitCode.SOURCE_FAILED)
    return int(ExitCode.CONFIG_ERROR)


def _print_rows(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...],
                empty: str) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(empty)
    else:
        print("  ".join(f"{c:<22}" for c in columns).rstrip())
        for row in rows:
            print("  ".join(f"{row[c]!s:<22}" for c in columns).rstrip())
    return 0


def _report(outcome: OperatorResult) -> int:
    out = sys.stdout
    out.write(outcome.message + "\n")
    plan = outcome.plan
    for user in plan.inserts:
        out.write(f"  + insert      {user.end_user}\n")
    for label, changes in (("update", plan.updates), ("deactivate", plan.deactivations)):
        for change in changes:
            out.write(f"  ~ {label:<11} {change.end_user}  active_to -> "
                      f"{change.after.active_to or '(none)'}\n")
    for user in plan.deletes:
        out.write(f"  - delete      {user.end_user}\n")
    for end_user, why in outcome.skipped:
        out.write(f"  = skip        {end_user}: {why}\n")
    if outcome.result is not None:
        for failure in outcome.result.failures:
            out.write(f"  ! failed      {failure.end_user}: {failure.reason}\n")
    if outcome.run_id and outcome.result and outcome.result.changes:
        out.write(f"recorded as run {outcome.run_id} (undo with `syncd rollback "
                  f"{outcome.run_id}`)\n")
    return int(outcome.exit_code)


def _preview(config: SyncdConfig, args: argparse.Namespace) -> int:
    from syncd.model import id_key
    from syncd.operator import preview

    roster = preview(config)
    users = sorted(roster.users.values(), key=lambda u: u.end_user)
    if args.ids:
        wanted = {id_key(i) for i in args.ids}
        users = [u for u in users if id_key(u.end_user) in wanted]
    shown = users if args.limit <= 0 else users[:args.limit]
    if args.format == "json":
        print(json.dumps([{"end_user": u.end_user, "tags": dict(u.tags),
                           "active_from": u.active_from.isoformat() if u.active_from else None,
                           "active_to": u.active_to.isoformat() if u.active_to else None,
                           "sources": list(u.sources)} for u in shown], indent=2,
                         ensure_ascii=False))
        return 0
    width = max([len(u.end_user) for u in shown] + [8])
    print(f"{'end_user':<{width}}  {'active_from':<11}  {'active_to':<10}  tags")
    for u in shown:
        tags = " ".join(f"{k}={v}" for k, v in sorted(u.tags.items()))
        print(f"{u.end_user:<{width}}  {u.active_from or '(on insert)'!s:<11}  "
              f"{u.active_to or '-'!s:<10}  {tags}")
    print(f"({len(shown)} of {len(users)} users"
          f"{'; use --limit 0 for all' if len(shown) < len(users) else ''})")
    return 0
