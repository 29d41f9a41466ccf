"""structlog setup: JSON for machines, console for people, and secret redaction.

Secrets are pydantic SecretStr in the config and never formatted; as a second
line of defence every resolved secret is registered here and masked in any
event that would contain it (a secret echoed back inside a server's error
text, say).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

from syncd.core.text import escape_controls
from syncd.terminal import LIVE_EVERY, LiveLine, color_enabled

_secrets: set[str] = set()
MASK = "[REDACTED]"


@dataclass(slots=True)
class _Terminal:
    # --color, remembered: the daemon configures the log again on every config reload.
    color: str = "auto"
    live: LiveLine | None = None


_terminal = _Terminal()


def register_secret(value: str) -> None:
    # Very short values would mask ordinary words; real keys are long.
    if len(value) >= 4:
        _secrets.add(value)


def register_secret_lines(value: str) -> tuple[str, ...]:
    """Register a multi-line secret (a PEM private key) and each of its long lines,
    so an error quoting part of it is masked too. Armour lines are not secret.

    Returns what it registered: a source scrubbing its own error text with these
    masks the same lines as the log."""
    lines = (line.strip() for line in value.splitlines())
    parts = (value, *(line for line in lines if len(line) >= 16 and "-----" not in line))
    for part in parts:
        register_secret(part)
    return parts


def redact_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def safe_text(text: str) -> str:
    """`text` fit for a terminal: registered secrets masked, then every control and
    bidi character escaped. Every message syncd writes to stderr (a config problem, a
    source error, an internal error) goes through this.

    The order matters: escaping first would rewrite a secret that contains a control
    character (a tab, a newline in a PEM key) as `\\x09`, `\\x0a`, and the redactor,
    looking for the secret as registered, would no longer find it."""
    return escape_controls(redact_text(text))


def _map_text(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string in it (and exceptions, as text)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_text(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_text(v, change) for v in value]
    if isinstance(value, BaseException):
        return change(f"{type(value).__name__}: {value}")
    return value


def redact_processor(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The JSON view: secrets masked (its renderer escapes every control itself)."""
    if not _secrets:
        return event
    for key, value in event.items():
        event[key] = _map_text(value, redact_text)
    return event


def console_processor(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The console view prints values raw: secrets masked and controls from Nebuly or
    the directory escaped, both in one walk over the event (`safe_text` on each string,
    which masks before it escapes), so a large event is walked once, not twice."""
    change = safe_text if _secrets else escape_controls
    for key, value in event.items():
        event[key] = _map_text(value, change)
    return event


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None, *,
              color: str | None = None, live: bool = False,
              live_every: float = LIVE_EVERY) -> None:
    """Set up the log. `color`: auto|always|never (None: as last chosen). `live`: the
    command shows progress as a live line, updated at most every `live_every` seconds,
    when the log is the console view on a terminal (see `live_line`)."""
    out = stream or sys.stderr
    _terminal.color = color or _terminal.color
    # auto: a person at a terminal gets the console view; anything piped or
    # collected (a container, systemd, `| tee`) gets one JSON object per line.
    use_json = fmt == "json" or (fmt == "auto" and not (out.isatty() and sys.stdout.isatty()))
    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if use_json
                     else structlog.dev.ConsoleRenderer(colors=color_enabled(_terminal.color, out)))
    # Never in JSON mode nor into a pipe or file: a rewritten line is for eyes only.
    live_line = LiveLine(out, live_every) if live and not use_json and out.isatty() else None
    _terminal.live = live_line
    if live_line is not None:
        out = live_line  # log lines are written above the live line, never into it
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor if use_json else console_processor,
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        # One write() per event, text and newline together: print() (PrintLogger)
        # writes them separately, and an unbuffered stream (PYTHONUNBUFFERED, as in
        # the image) turns that into two write(2) calls, which container runtimes
        # record as a partial line followed by an empty one.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries (azure-identity, msal, ldap3, apscheduler) log through the stdlib:
    # render them the same way, redacted, at WARNING and above, so the stream stays
    # one JSON object per line.
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared]))
    handler.set_name("syncd")
    root = logging.getLogger()
    # Replace only our own handler: others (pytest's capture, an embedding app's) stay.
    root.handlers = [h for h in root.handlers if h.get_name() != "syncd"] + [handler]
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def live_line() -> LiveLine | None:
    """The live progress line of this command, if it has one (see `configure`)."""
    return _terminal.live


def get_logger() -> Any:
    return structlog.get_logger("syncd")
