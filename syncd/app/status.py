"""`syncd status`: the state at a glance, from state_dir alone (no source, no Nebuly call):
the last run, the failure streak, the daemon's next run, pending plans and what they
block, and who is waiting out the departure grace period."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from syncd.app.commands import TAG_REMOVALS, plan_row, read_only_state_dir
from syncd.app.paint import painter
from syncd.config.model import SyncdConfig
from syncd.core.plan import within_grace
from syncd.core.text import escape_json_text
from syncd.run.inputs import plan_policy
from syncd.run.state import StoredPlan
from syncd.run.status_record import DAEMON, LAST_RUN, load

_COUNTS = ("inserted", "updated", "deactivated", "reactivated", "deleted", "blocked", "failed")
# The fields of `syncd plans`' row that status shows, in the order its JSON has always had.
_PLAN_FIELDS = ("plan_id", "created_at", "expires_at", "expired", "reason", "deactivate",
                "delete", "tag_removal")


def status(args: argparse.Namespace, config: SyncdConfig) -> int:
    state = read_only_state_dir(config)
    problems: list[str] = []
    now = datetime.now(UTC)
    policy = plan_policy(config)
    doc: dict[str, Any] = {
        "last_run": load(state, LAST_RUN),
        "next_run": load(state, DAEMON),
        "pending_plans": [_plan(p, config, now) for p in state.list_plans(problems)],
        # Everyone missing is remembered; those past their grace were deactivated or
        # are held by a guard (a pending plan), so they are not "in grace".
        "in_grace": [{"end_user": key, "first_missed": m.first_missed.isoformat(),
                      "runs": m.runs} for key, m in sorted(state.load_missing().items())
                     if within_grace(m, policy, now.date())],
        "problems": problems,
    }
    if args.json:
        # Readable non-ASCII, but C1 and bidi characters escaped (C0 always is).
        print(escape_json_text(json.dumps(doc, indent=2, ensure_ascii=False)))
    else:
        painter(args.color, sys.stdout).write(sys.stdout, _text(doc, config))
    return 0


def _plan(plan: StoredPlan, config: SyncdConfig, now: datetime) -> dict[str, Any]:
    """A pending plan with what it blocks, summed per tag value so that "all 37 are in
    Legal" is visible before anyone approves."""
    by_tag: dict[str, Counter[str]] = {}
    removed: Counter[str] = Counter()
    for action, before, after in plan.changes:
        if action in TAG_REMOVALS and after is not None:
            removed.update(k for k, v in before.tags.items() if v and not after.tags.get(k))
            continue
        for key, value in before.tags.items():
            by_tag.setdefault(key, Counter())[value] += 1
    row = plan_row(plan, now)
    return {**{field: row[field] for field in _PLAN_FIELDS},
            "leaving_by_tag": {k: dict(c.most_common()) for k, c in sorted(by_tag.items())},
            "tags_removed": dict(removed.most_common()),
            "approve": config.command_hint(f"approve {plan.plan_id}")}


def _text(doc: dict[str, Any], config: SyncdConfig) -> list[str]:
    lines = []
    last = doc["last_run"]
    if last is None:
        lines.append("last run:      none recorded yet (runs record here once state_dir is set)")
    else:
        summary = last.get("summary", {})
        counts = ", ".join(f"{summary[k]} {k}" for k in _COUNTS if k in summary)
        lines.append(f"last run:      {last.get('finished_at')}  {summary.get('status')} "
                     f"(exit {summary.get('exit_code')})  run {summary.get('run_id')}")
        if counts:
            lines.append(f"               {counts}")
        if summary.get("error"):
            lines.append(f"               error: {summary['error']}")
        lines.append(f"failures:      {last.get('consecutive_failures', 0)} in a row; last "
                     f"success {last.get('last_success_at') or 'never'}")
    daemon = doc["next_run"]
    lines.append("next run:      " + (
        f"{daemon.get('next_run')} ({daemon.get('schedule')}; daemon pid {daemon.get('pid')} "
        f"on {daemon.get('host')}, as of {daemon.get('updated_at')})" if daemon
        else "unknown: no daemon (`syncd run`) has recorded one in this state_dir"))
    plans = doc["pending_plans"]
    lines.append(f"pending plans: {len(plans) or 'none'}")
    for plan in plans:
        expired = "  EXPIRED" if plan["expired"] else ""
        lines.append(f"  {plan['plan_id']}  {plan['deactivate']} deactivate, "
                     f"{plan['delete']} delete, {plan['tag_removal']} tag removal; "
                     f"expires {plan['expires_at']}{expired}")
        for key, values in plan["leaving_by_tag"].items():
            shown = ", ".join(f"{v} {n}" for v, n in list(values.items())[:5])
            more = f", {len(values) - 5} more values" if len(values) > 5 else ""
            lines.append(f"    leaving by {key}: {shown}{more}")
        if plan["tags_removed"]:
            removed = ", ".join(f"{k} from {n}" for k, n in plan["tags_removed"].items())
            lines.append(f"    tags taken away: {removed}")
        lines.append(f"    {plan['approve']} --dry-run")
    grace = doc["in_grace"]
    policy = config.policy
    lines.append(f"in grace:      {len(grace) or 'none'}" + (
        f" (missing, not yet deactivated: grace_runs {policy.grace_runs}"
        f"{f', grace_period {policy.grace_period / 86400:g}d' if policy.grace_period else ''})"
        if grace else ""))
    lines += [f"  {g['end_user']}  missing since {g['first_missed']}, {g['runs']} run(s)"
              for g in grace[:20]]
    if len(grace) > 20:
        lines.append(f"  ... {len(grace) - 20} more (--json lists all)")
    lines += [f"warning: {p} (skipped)" for p in doc["problems"]]
    return lines
