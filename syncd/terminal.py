"""What syncd writes to a terminal beyond plain lines: whether to colour, and a live
progress line rewritten in place below the log.

Nothing here is used when the output is not a terminal (unless colour is forced),
so piped output and log files stay exactly as they are.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TextIO

from syncd.core.text import escape_controls

COLOR_CHOICES = ("auto", "always", "never")
# Often enough to look alive, rarely enough to cost nothing next to a page read.
LIVE_EVERY = 0.25
# Back to the start of the line, and erase from there to its end.
_ERASE_LINE = "\r\x1b[K"


def _set(environ: Mapping[str, str], name: str) -> bool:
    # no-color.org and force-color.org: "present and not an empty string".
    return bool(environ.get(name, ""))


def color_enabled(choice: str, stream: TextIO,
                  environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to `stream`. `--color always|never` decide alone (a
    per-command choice overrides the environment, as no-color.org asks); under `auto`
    NO_COLOR wins over FORCE_COLOR, which wins over "is it a terminal"."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    env = os.environ if environ is None else environ
    if _set(env, "NO_COLOR"):
        return False
    if _set(env, "FORCE_COLOR"):
        return True
    return stream.isatty()


class LiveLine:
    """A line at the bottom of a terminal that progress rewrites in place.

    It is also the stream the log writes to while it exists: a log line (from any
    thread: Nebuly's roster is read while the sources are) first erases the live
    line, is written, and the live line is drawn again below it, so the two never
    mix on one row. One lock orders them.
    """

    def __init__(self, out: TextIO, every: float = LIVE_EVERY) -> None:
        self.every = every  # seconds between two updates (0: every page, for tests)
        self._out = out
        self._lock = threading.Lock()
        self._text = ""

    def show(self, text: str) -> None:
        """Replace the live line with `text` (escaped, cut to the terminal's width:
        a wrapped line could not be rewritten in place)."""
        line = escape_controls(text)[:self._width() - 1]
        with self._lock:
            self._text = line
            self._out.write(_ERASE_LINE + line)
            self._out.flush()

    def clear(self) -> None:
        """Erase the live line (at the end of a read): the next output starts on a clean row."""
        with self._lock:
            if self._text:
                self._text = ""
                self._out.write(_ERASE_LINE)
                self._out.flush()

    # -- the file-like side, for the log -----------------------------------------

    def write(self, text: str) -> int:
        with self._lock:
            if not self._text:
                return self._out.write(text)
            self._out.write(_ERASE_LINE)
            written = self._out.write(text)
            if text.endswith("\n"):
                self._out.write(self._text)
            else:  # a partial line: the next progress update draws the live line again
                self._text = ""
            return written

    def flush(self) -> None:
        with self._lock:
            self._out.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._out.fileno()

    def _width(self) -> int:
        try:
            columns = os.get_terminal_size(self._out.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        return max(columns, 20) if columns else 80  # 0: a terminal that does not say
