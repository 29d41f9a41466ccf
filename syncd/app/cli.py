"""The `syncd` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from syncd import __version__

EXIT_CODES_HELP = """exit codes:
  0  success (or dry run) and every change applied
  1  internal error (please report it)
  2  invalid config or command line, or an unusable state_dir
  3  a source could not be read completely: nothing was written
  4  Nebuly could not be read or written (unreachable, rejected key)
  5  a guard blocked deactivations/deletes; inserts and updates were applied
  6  some users were rejected by Nebuly; the others were applied
"""

DEFAULT_CONFIG = os.environ.get("SYNCD_CONFIG", "/etc/syncd/config.yaml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep a Nebuly project's user roster equal to your directory.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                       help="YAML config file (default: $SYNCD_CONFIG or %(default)s)")
        return p

    once = with_config("once", "run one sync now")
    plan = with_config("plan", "show what one sync would change; write nothing")
    for p in (once, plan):
        p.add_argument("--plan-out", type=Path, help="also write the plan as JSON to this file")
        p.add_argument("--force", action="store_true",
                       help="lift the max_deactivations cap for this run")
    once.add_argument("--dry-run", action="store_true", help="same as `syncd plan`")
    with_config("validate", "check a config file and say which sources it would read")
    with_config("run", "run as a daemon: sync on schedule, serve /livez /readyz /metrics")
    sub.add_parser("schema", help="print the config's JSON Schema (for editor completion)")
    from syncd.app import commands

    commands.add_parsers(sub, with_config)
    return parser


def _load(path: Path) -> object:
    from syncd.config.model import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"syncd: {path} is not a usable config:\n")
        for problem in exc.problems:
            sys.stderr.write(f"  {problem}\n")
        raise SystemExit(2) from None


def _cmd_once(args: argparse.Namespace, dry_run: bool) -> int:
    from syncd import log
    from syncd.app.planfile import print_plan, report_json, write_json_atomic
    from syncd.config.model import SyncdConfig
    from syncd.run.orchestrator import run_once

    config = _load(args.config)
    assert isinstance(config, SyncdConfig)
    log.configure(config.logging.format, config.logging.level)
    report = run_once(config, dry_run=dry_run, force=args.force)
    if dry_run:
        print_plan(report, sys.stdout)
    if args.plan_out is not None and report.guarded is not None:
        write_json_atomic(args.plan_out, report_json(report))
    return int(report.exit_code)


def _cmd_run(args: argparse.Namespace) -> int:
    from syncd.app import daemon
    from syncd.config.model import SyncdConfig

    config = _load(args.config)
    assert isinstance(config, SyncdConfig)
    return daemon.main(args.config, config)


def _cmd_validate(args: argparse.Namespace) -> int:
    from syncd.config.model import SyncdConfig
    from syncd.config.secrets import read_secret
    from syncd.core.templates import template_attributes, template_problems

    config = _load(args.config)
    assert isinstance(config, SyncdConfig)
    problems = template_problems(config.sources)
    try:
        config.nebuly.resolve_api_key()
    except ValueError as exc:
        problems.append(str(exc))
    for i, source in enumerate(config.sources):
        for name in type(source).model_fields:
            if name.endswith("_file") and getattr(source, name) is not None:
                secret = name.removesuffix("_file")
                if hasattr(source, secret):
                    try:
                        read_secret(getattr(source, secret), getattr(source, name), secret)
                    except ValueError as exc:
                        problems.append(f"sources[{i}].{exc}")
    if problems:
        sys.stderr.write(f"syncd: {args.config} is not a usable config:\n")
        sys.stderr.writelines(f"  {p}\n" for p in problems)
        return 2
    print(f"{args.config}: valid. Nebuly {config.nebuly.url} ({config.nebuly.api}), "
          f"policy {config.policy.mode}, max_deactivations {config.policy.max_deactivations}.")
    for source in config.sources:
        where = getattr(source, "path", None) or getattr(source, "url", None) or ""
        attrs = ", ".join(sorted(template_attributes(source)))
        print(f"  source {source.name!r} ({source.type}): reads {where}; attributes: {attrs}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("once", "plan"):
            return _cmd_once(args, dry_run=args.command == "plan" or args.dry_run)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command in ("plans", "approve", "runs", "rollback", "preview"):
            from syncd import log
            from syncd.app import commands
            from syncd.config.model import SyncdConfig

            config = _load(args.config)
            assert isinstance(config, SyncdConfig)
            log.configure(config.logging.format, config.logging.level)
            return commands.run(args.command, args, config)
        if args.command == "schema":
            from syncd.config.model import json_schema

            print(json.dumps(json_schema(), indent=2))
            return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: a message, never a traceback
        from syncd.log import redact_text

        sys.stderr.write(f"syncd: internal error: {type(exc).__name__}: "
                         f"{redact_text(str(exc))}\nPlease report this with the command you ran.\n")
        return 1
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
