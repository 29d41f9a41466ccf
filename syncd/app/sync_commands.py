"""`syncd once`, `plan`, `validate`, `run` and `schema` (see registry.py)."""

from __future__ import annotations

import argparse
import json
import sys

from syncd import log
from syncd.app.paint import painter
from syncd.app.planfile import print_plan, write_plan_file
from syncd.config.model import SyncdConfig, json_schema
from syncd.config.security import warn_insecure_transports
from syncd.core.templates import template_attributes
from syncd.core.text import escape_controls
from syncd.run.orchestrator import run_once


def once(args: argparse.Namespace, config: SyncdConfig) -> int:
    return _sync(args, config, dry_run=args.dry_run)


def plan(args: argparse.Namespace, config: SyncdConfig) -> int:
    return _sync(args, config, dry_run=True)


def _sync(args: argparse.Namespace, config: SyncdConfig, dry_run: bool) -> int:
    report = run_once(config, dry_run=dry_run, force=args.force)
    # At a terminal a person ran it: say what was done, as `plan` says what would be
    # (the log line is for machines). Piped output stays as it was, for scripts.
    if dry_run or sys.stdout.isatty():
        print_plan(report, sys.stdout, painter(args.color, sys.stdout))
    if args.plan_out is not None and report.guarded is not None:
        write_plan_file(args.plan_out, report)
    return int(report.exit_code)


def daemon(args: argparse.Namespace, config: SyncdConfig) -> int:
    from syncd.app import daemon as scheduler

    return scheduler.main(args.config, config, dry_run=args.dry_run, log_level=args.log_level)


def validate(args: argparse.Namespace, config: SyncdConfig) -> int:
    from syncd.app.offline_checks import offline_checks

    check = offline_checks(config, read_csv=not args.connect)
    if check.problems:
        sys.stderr.write(f"syncd: {escape_controls(str(args.config))} is not a usable config:\n")
        sys.stderr.writelines(f"  {log.safe_text(p)}\n" for p in check.problems)
        return 2
    lines = [f"{args.config}: valid. Nebuly {config.nebuly.url} ({config.nebuly.api}), "
             f"policy {config.policy.mode}, max_deactivations {config.policy.max_deactivations}."]
    for source in config.sources:
        # The file, server or API endpoint each kind of source reads.
        where = next((str(value) for key in ("path", "url", "graph_url", "org_url",
                                             "api_endpoint")
                      if (value := getattr(source, key, None))), "")
        attrs = ", ".join(sorted(template_attributes(source)))
        note = f" ({check.notes[source.name]})" if source.name in check.notes else ""
        lines.append(f"  source {source.name!r} ({source.type}): reads {where}{note}; "
                     f"attributes: {attrs}")
    # Allowed is not silent: the admin reads it here, the log pipeline gets the event.
    for item in warn_insecure_transports(config, log.get_logger()):
        lines.append(f"  warning: {item.where} ({item.key}): {item.risk}")
    painter(args.color, sys.stdout).write(sys.stdout, lines)
    return _connect_checks(config) if args.connect else 0


def _connect_checks(config: SyncdConfig) -> int:
    from syncd.sources.check import check_source

    # Only warnings (a skipped failover server) reach stderr; the report is on stdout.
    log.configure(config.logging.format, "warning")
    print("Reading the sources (nothing is written; Nebuly is not contacted):")
    problems: list[str] = []
    for index, source in enumerate(config.sources):
        result = check_source(index, source)
        print(f"  source {source.name!r}: {'ok' if not result.problems else 'FAILED'}")
        for line in result.lines:  # directory values: escaped like every other output
            print(f"    {escape_controls(line)}")
        problems.extend(result.problems)
    if problems:
        sys.stderr.write("syncd: a source cannot be read:\n")
        sys.stderr.writelines(f"  {log.safe_text(p)}\n" for p in problems)
        return 3
    return 0


def schema(args: argparse.Namespace) -> int:
    del args
    print(json.dumps(json_schema(), indent=2))
    return 0
