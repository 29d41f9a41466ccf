"""Every `syncd` command in one table: adding a command is one entry here (and its
handler). Handlers are named as "module:function" and imported only when their
command runs, so `syncd --help` stays free of the engine's imports."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

AddArguments = Callable[[argparse.ArgumentParser], None]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    # "module:function"; with a config the function takes (args, config), else (args).
    handler: str
    arguments: AddArguments = _no_arguments
    needs_config: bool = True
    # Shows a live progress line while it reads the sources (on a terminal, console log).
    live_progress: bool = False


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan-out", type=Path, help="also write the plan as JSON to this file")
    parser.add_argument("--force", action="store_true",
                        help="lift the max_deactivations cap for this run")


def _once_arguments(parser: argparse.ArgumentParser) -> None:
    _sync_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="same as `syncd plan`")


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect", action="store_true",
        help="also read every source once (bind, check base DNs and groups, count people); "
        "writes nothing and never contacts Nebuly. Exit 3 if a source cannot be read")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="show what it would do; write nothing")


def _approve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_id", metavar="PLAN_ID", help="from `syncd plans` or the log")
    _dry_run(parser)


def _rollback_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="from `syncd runs` or the log")
    parser.add_argument("--force", action="store_true",
                        help="also restore users changed again since that run")
    _dry_run(parser)


def _preview_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=20, help="rows to show (default 20; 0: all)")
    parser.add_argument("--id", dest="ids", action="append", default=[],
                        help="show only this end_user (repeatable)")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="observe only: every scheduled run reads, plans, logs and exports "
                        "metrics, and writes nothing (to Nebuly or state_dir)")


def _explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("end_user", metavar="ID", help="the person's end_user id (any case)")
    parser.add_argument("--offline", action="store_true",
                        help="read the sources only; do not read Nebuly")
    _json_flag(parser)


_SYNC = "syncd.app.sync_commands"
_OPS = "syncd.app.commands"

COMMANDS: tuple[Command, ...] = (
    Command("once", "run one sync now", f"{_SYNC}:once", _once_arguments, live_progress=True),
    Command("plan", "show what one sync would change; write nothing", f"{_SYNC}:plan",
            _sync_arguments, live_progress=True),
    Command("validate", "check a config file and say which sources it would read",
            f"{_SYNC}:validate", _validate_arguments),
    Command("run", "run as a daemon: sync on schedule, serve /livez /readyz /metrics",
            f"{_SYNC}:daemon", _run_arguments),
    Command("schema", "print the config's JSON Schema (for editor completion)",
            f"{_SYNC}:schema", needs_config=False),
    Command("plans", "list plans blocked by a guard and waiting for approval", f"{_OPS}:plans",
            _json_flag),
    Command("approve", "apply the blocked part of a plan (people still absent)",
            f"{_OPS}:approve", _approve_arguments),
    Command("runs", "list recorded runs that changed something", f"{_OPS}:runs", _json_flag),
    Command("rollback", "restore every user a run changed to its previous values",
            f"{_OPS}:rollback", _rollback_arguments),
    Command("preview", "show the Nebuly records the sources map to; no Nebuly call",
            f"{_OPS}:preview", _preview_arguments, live_progress=True),
    Command("status", "last run, failure streak, next run, pending plans, people in grace "
            "(from state_dir; no call)", "syncd.app.status:status", _json_flag),
    Command("explain", "why a person is or is not in the roster, and what the next run "
            "would do to their Nebuly record", "syncd.app.explain:explain", _explain_arguments,
            live_progress=True),
)
BY_NAME = {command.name: command for command in COMMANDS}
