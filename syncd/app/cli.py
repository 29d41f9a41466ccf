"""The `syncd` command: the parser and the dispatch, both from registry.COMMANDS."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from syncd import __version__
from syncd.app.registry import BY_NAME, COMMANDS
from syncd.terminal import COLOR_CHOICES, LIVE_EVERY

EXIT_CODES_HELP = """exit codes:
  0  success (or dry run) and every change applied
  1  internal error (please report it)
  2  invalid config or command line, or an unusable state_dir
  3  a source could not be read completely: nothing was written
  4  Nebuly could not be read or written (unreachable, rejected key)
  5  a guard blocked deactivations/deletes; inserts and updates were applied
  6  some users were rejected by Nebuly; the others were applied
  7  another syncd command holds state_dir (the message names it); nothing was done
"""

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG = os.environ.get("SYNCD_CONFIG", "/etc/syncd/config.yaml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep a Nebuly project's user roster equal to your directory.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help,
                           epilog=EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if command.needs_config:
            p.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                           help="YAML config file (default: $SYNCD_CONFIG or %(default)s)")
        p.add_argument("--log-level", choices=LOG_LEVELS,
                       help="overrides logging.level in the config for this command")
        p.add_argument("--color", choices=COLOR_CHOICES, default="auto",
                       help="colour the output: auto (on a terminal, unless NO_COLOR is set; "
                       "FORCE_COLOR forces it), always or never (default: %(default)s)")
        command.arguments(p)
    return parser


def _load(path: Path) -> object:
    from syncd.config.model import ConfigError, load_config
    from syncd.core.text import escape_controls
    from syncd.log import safe_text

    try:
        return load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"syncd: {escape_controls(str(path))} is not a usable config:\n")
        for problem in exc.problems:
            sys.stderr.write(f"  {safe_text(problem)}\n")
        raise SystemExit(2) from None


def _live_every() -> float:
    """Seconds between two updates of the live progress line. SYNCD_LIVE_EVERY is not
    documented: tests set it to 0 to see an update per page of a short read."""
    try:
        return max(0.0, float(os.environ.get("SYNCD_LIVE_EVERY", LIVE_EVERY)))
    except ValueError:
        return LIVE_EVERY


def _dispatch(args: argparse.Namespace) -> int:
    command = BY_NAME[args.command]
    module, function = command.handler.split(":")
    handler = getattr(importlib.import_module(module), function)
    if not command.needs_config:
        return int(handler(args))
    from syncd import log
    from syncd.config.model import SyncdConfig
    from syncd.run.report import ExitCode
    from syncd.run.state import StateError
    from syncd.sources.base import SourceError

    config = _load(args.config)
    assert isinstance(config, SyncdConfig)
    log.configure(config.logging.format, args.log_level or config.logging.level,
                  color=args.color, live=command.live_progress, live_every=_live_every())
    try:
        return int(handler(args, config))
    except (StateError, ValueError) as exc:  # an unusable state_dir, an unreadable key file
        sys.stderr.write(f"syncd: {log.safe_text(str(exc))}\n")
        return int(ExitCode.CONFIG_ERROR)
    except SourceError as exc:
        sys.stderr.write(f"syncd: {log.safe_text(str(exc))}\n")
        return int(ExitCode.SOURCE_FAILED)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `syncd plan | head`: the reader has all it wanted. End quietly, as a command
        # killed by SIGPIPE would (128 + 13), and keep the interpreter's final flush
        # from failing on the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # the last line of defence: a message, never a traceback
        from syncd.log import safe_text

        sys.stderr.write(f"syncd: internal error: {type(exc).__name__}: "
                         f"{safe_text(str(exc))}\n"
                         "Please report this with the command you ran.\n")
        return 1


def entry() -> None:
    """The `syncd` executable: run the command, flush what it wrote, and leave.

    A large run ends with millions of objects alive; letting the interpreter free
    them one by one at exit costs a noticeable part of a no-change run for nothing
    (the kernel reclaims the memory at once). Everything the command writes goes
    through stdout, stderr and logging, which are flushed first.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
