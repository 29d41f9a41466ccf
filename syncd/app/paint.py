"""Colour for what people read at a terminal: plans, operator results, listings,
status and explain.

A line's colour follows from how syncd starts it ("  + insert", "  ~ deactivate",
"Blocked by a guard", "warning:"): the words are syncd's own, never a value. Every
line is escaped first (ids and tags come from the directory and Nebuly, see
core/text.py), so the only escape codes in the output are the ones added here.
Without colour a line is exactly its escaped text, as before colour existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TextIO

from syncd.core.text import escape_controls
from syncd.terminal import color_enabled


class Style(Enum):
    """SGR parameters of each kind of line."""

    ADDED = "32"  # green: people who get access
    CHANGED = "33"  # yellow: values that change
    REMOVED = "31"  # red: people who lose access
    HELD = "1;33"  # bold yellow: blocked parts, guard trips, warnings, failures
    HEADING = "1"  # bold: summaries, section and table headings
    QUIET = "2"  # dim: what is only noted (waiting out the grace, skipped)


class Span(Enum):
    LINE = "line"  # the whole line
    LABEL = "label"  # only the rule's prefix (a "label:" at the start of a line)


@dataclass(frozen=True, slots=True)
class Rule:
    prefix: str
    style: Style
    span: Span = Span.LINE


# First match wins: the more specific prefix comes first.
RULES: tuple[Rule, ...] = (
    Rule("  + ", Style.ADDED),
    Rule("  ~ deactivate", Style.REMOVED),
    Rule("  ~ ", Style.CHANGED),
    Rule("  - ", Style.REMOVED),
    Rule("  x ", Style.HELD),
    Rule("  ! ", Style.HELD),
    Rule("  = ", Style.QUIET),
    Rule("  . ", Style.QUIET),
    Rule("Blocked ", Style.HELD),
    Rule("Would apply:", Style.HEADING),
    Rule("Applied:", Style.HEADING),
    Rule("Waiting out ", Style.HEADING),
    Rule("warning:", Style.HELD),
    Rule("  warning:", Style.HELD),
    Rule("syncd: warning:", Style.HELD),
    # explain
    Rule("  next run: insert", Style.ADDED),
    Rule("  next run: reactivate", Style.ADDED),
    Rule("  next run: update", Style.CHANGED),
    Rule("  next run: deactivate", Style.REMOVED),
    Rule("  next run: delete", Style.REMOVED),
    Rule("  Nebuly: could not be read", Style.HELD),
    # status
    *(Rule(label, Style.HEADING, Span.LABEL)
      for label in ("last run:", "failures:", "next run:", "pending plans:", "in grace:")),
)


@dataclass(frozen=True, slots=True)
class Painter:
    """Escapes lines for a terminal and, when `color`, colours them by their kind."""

    color: bool

    def line(self, text: str, style: Style | None = None) -> str:
        """`text` escaped; coloured by `style`, or else by the first rule it starts with."""
        safe = escape_controls(text)
        if not self.color:
            return safe
        if style is not None:
            return _sgr(safe, style)
        for rule in RULES:
            if text.startswith(rule.prefix):
                if rule.span is Span.LABEL:
                    return _sgr(rule.prefix, rule.style) + safe[len(rule.prefix):]
                return _sgr(safe, rule.style)
        return safe

    def plain(self, text: str) -> str:
        """`text` escaped, never coloured: a line that starts with a value (an id)."""
        return escape_controls(text)

    def write(self, out: TextIO, lines: Iterable[str]) -> None:
        out.writelines(self.line(text) + "\n" for text in lines)


def _sgr(text: str, style: Style) -> str:
    return f"\x1b[{style.value}m{text}\x1b[0m"


def painter(choice: str, stream: TextIO) -> Painter:
    """The painter for `stream` under --color `choice` (auto|always|never)."""
    return Painter(color_enabled(choice, stream))


PLAIN = Painter(color=False)
