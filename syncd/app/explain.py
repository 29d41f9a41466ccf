"""`syncd explain ID`: why one person is or is not in the desired roster, and what the
next run would do to their Nebuly record. The source side works offline (`--offline`);
the Nebuly side is the same plan a run would make (one GET, no write)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd import log
from syncd.app.commands import read_only_state_dir
from syncd.app.paint import Style, painter
from syncd.config.model import SyncdConfig
from syncd.core.ids import exclusion_pattern, id_key
from syncd.core.mapping import SourceMapper
from syncd.core.model import Change, DesiredUser, NebulyUser
from syncd.core.policy import GuardedPlan
from syncd.core.templates import Template
from syncd.core.text import escape_json_text
from syncd.run.inputs import decide_run, nebuly_client, read_desired
from syncd.run.progress import read_watched
from syncd.run.report import ExitCode
from syncd.sources.base import NO_PROGRESS, ReadProgress, SourceRead
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.factory import build_source


@dataclass(frozen=True, slots=True)
class _Replay:
    """A source already read: explain reads each source once for both sides."""

    name: str
    done: SourceRead

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        return self.done


def explain(args: argparse.Namespace, config: SyncdConfig) -> int:
    key = id_key(args.end_user)
    reads = [_Replay(s.name, read_watched(build_source(s), log.get_logger(), time.perf_counter))
             for s in config.sources]  # SourceError: 3
    doc: dict[str, Any] = {"end_user": args.end_user, "sources": [
        _in_source(s, r.done, key, config) for s, r in zip(config.sources, reads, strict=True)]}
    merged, _ = read_desired(config, reads, log.get_logger())
    desired = merged.users.get(key)
    doc["desired"] = _desired(desired) if desired else None
    doc["protected"] = key in merged.protected_ids
    code = ExitCode.OK
    if not args.offline:
        try:
            doc |= _nebuly_side(config, merged, key)
        except Exception as exc:  # NebulyError and transport errors: report, exit 4
            doc["nebuly_error"] = log.redact_text(str(exc))
            code = ExitCode.NEBULY_FAILED
    if args.json:
        # Readable non-ASCII, but C1 and bidi characters escaped (C0 always is).
        print(escape_json_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str)))
    else:
        paint = painter(args.color, sys.stdout)
        first, *rest = _text(doc)
        sys.stdout.write(paint.line(first, Style.HEADING) + "\n")  # the id asked about
        paint.write(sys.stdout, rest)
    return int(code)


def _in_source(source: SourceConfigBase, read: SourceRead, key: str,
               config: SyncdConfig) -> dict[str, Any]:
    """What this source says about the person: the record, and what decided."""
    template = Template.parse(source.end_user)

    def is_them(attributes: dict[str, str]) -> bool:
        value = template.render(attributes)
        return value is not None and id_key(value) == key

    entry: dict[str, Any] = {"source": source.name, "type": getattr(source, "type", "")}
    found = [r for r in read.records if is_them(dict(r.attributes))]
    unreadable = [p for p in read.problems if p.attributes and is_them(dict(p.attributes))]
    if unreadable:
        entry["decision"] = "unreadable"
        entry["why"] = (f"{unreadable[0].origin}: {unreadable[0].message}; the person exists, "
                        "so syncd leaves their Nebuly record as it is")
        return entry
    if not found:
        entry["decision"] = "not read"
        entry["why"] = _selection(source)
        return entry
    record = found[0]
    entry["record"] = record.origin
    mapped = SourceMapper(source, config.policy.id_case).map([record])
    if mapped.excluded:
        pattern = next((p for p in source.exclude_ids if exclusion_pattern(p).search(key)), "")
        entry["decision"] = "excluded"
        entry["why"] = f"exclude_ids {pattern!r} matches the id"
    elif mapped.problems:
        entry["decision"] = "skipped"
        entry["why"] = mapped.problems[0].message
    else:
        entry["decision"] = "read"
        entry["mapped"] = _desired(mapped.users[0])
    return entry


def _selection(source: SourceConfigBase) -> str:
    """Who the source returns at all: the rules that left this person out."""
    rules = {"csv": lambda: f"no row of {getattr(source, 'path', '')} gives this id"}
    text = rules.get(getattr(source, "type", ""), lambda: "")()
    if text:
        return text
    parts = [f"{name} {getattr(source, name)!r}" for name in
             ("base_dn", "user_filter", "groups", "exclude_groups", "include_disabled",
              "include_guests") if getattr(source, name, None) not in (None, [], "")]
    return ("the directory did not return this id; it returns accounts selected by "
            + "; ".join(parts) + " (disabled accounts and, for Entra, guests are left out "
            "unless included)")


def _desired(user: DesiredUser) -> dict[str, Any]:
    return {"end_user": user.end_user, "tags": dict(user.tags),
            "active_from": user.active_from, "active_to": user.active_to,
            "sources": list(user.sources)}


def _nebuly_side(config: SyncdConfig, merged: Any, key: str) -> dict[str, Any]:
    from syncd.nebuly.client import make_http_client

    api_key = config.nebuly.resolve_api_key()
    log.register_secret(api_key)
    with make_http_client(config.nebuly.url, api_key, config.nebuly.timeout,
                          verify=config.nebuly.trust()) as http:
        roster = nebuly_client(config, http).list_users()
    missing = read_only_state_dir(config).load_missing() if config.state_dir else {}
    today = datetime.now(UTC).date()
    guarded = decide_run(config, merged, roster, today, missing, force=False)
    current = [u for u in roster.users if id_key(u.end_user) == key]
    return {"nebuly": [u.to_json() for u in current],
            "next_run": _next_run(guarded, key, key in roster.unusable_ids)}


def _next_run(guarded: GuardedPlan, key: str, unusable: bool) -> dict[str, Any]:
    if unusable:
        return {"action": "none", "why": "Nebuly's record of this id is unreadable: left alone"}
    for plan, blocked in ((guarded.allowed, False), (guarded.blocked, True)):
        sections: tuple[tuple[str, tuple[Change, ...] | tuple[NebulyUser, ...]], ...] = (
            ("insert", plan.inserts), ("update", plan.updates),
            ("reactivate", plan.reactivations), ("deactivate", plan.deactivations),
            ("delete", plan.deletes))
        for action, items in sections:
            for item in items:
                if id_key(item.end_user) != key:
                    continue
                out: dict[str, Any] = {"action": action, "blocked": blocked}
                if isinstance(item, Change):
                    out["after"] = item.after.to_json()
                if blocked:
                    out["why"] = "; ".join(t.message for t in guarded.trips)
                return out
    planned = guarded.planned
    for ids, why in ((planned.waiting, "missing from the sources, waiting out the grace "
                      "period (policy.grace_runs / grace_period)"),
                     (planned.foreign, "in Nebuly without policy.owner_tag: not syncd's"),
                     (planned.duplicate_ids, "a case variant of another Nebuly entry")):
        if any(id_key(i) == key for i in ids):
            return {"action": "none", "why": why}
    return {"action": "none", "why": "Nebuly already matches (or nothing syncd manages)"}


def _text(doc: dict[str, Any]) -> list[str]:
    lines = [doc["end_user"]]
    for s in doc["sources"]:
        lines.append(f"  source {s['source']!r} ({s['type']}): {s['decision']}"
                     + (f" at {s['record']}" if s.get("record") else "")
                     + (f": {s['why']}" if s.get("why") else ""))
        if s.get("mapped"):
            lines.append(f"    maps to {_user(s['mapped'])}")
    desired = doc["desired"]
    lines.append("  desired roster: " + (
        f"yes, {_user(desired)} (from {', '.join(desired['sources'])})" if desired
        else "protected: an unreadable record, left as it is" if doc["protected"]
        else "no: no source yields this person, so an active Nebuly record is deactivated"))
    if "nebuly_error" in doc:
        lines.append(f"  Nebuly: could not be read: {doc['nebuly_error']}")
    elif "nebuly" in doc:
        lines += [f"  Nebuly now: {_user(u)}" for u in doc["nebuly"]] or ["  Nebuly now: absent"]
        step = doc["next_run"]
        blocked = " (blocked by a guard: needs `syncd approve` or --force)" \
            if step.get("blocked") else ""
        lines.append(f"  next run: {step['action']}{blocked}"
                     + (f" -> {_user(step['after'])}" if step.get("after") else "")
                     + (f"; {step['why']}" if step.get("why") else ""))
    return lines


def _user(user: dict[str, Any]) -> str:
    tags = " ".join(f"{k}={v}" for k, v in sorted((user.get("tags") or {}).items()))
    return (f"{user['end_user']}  {tags}  active_from={user.get('active_from') or '-'} "
            f"active_to={user.get('active_to') or '-'}")
