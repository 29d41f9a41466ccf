"""How far a long source read is: the receiver of a source's `ReadProgress`.

A read of hundreds of thousands of people takes minutes. Every ~10 s the log gets
a `source.progress` event (records and pages so far, the rate), and when the
command has a live line on a terminal it shows the same more often. A read
shorter than the interval says nothing: `source.read` follows at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncd import log
from syncd.pace import Every
from syncd.sources.base import Source, SourceRead
from syncd.terminal import LiveLine

LOG_EVERY = 10.0


class SourceProgress:
    """Counts one source's read and says how far it is, at most every `log_every`
    seconds in the log and every `live.every` seconds on the live line.

    Thread-safety: a source calls `page` from the one thread that reads it, so the
    counts need no lock. The one thing shared with another thread (the Nebuly GET,
    which logs while sources are read) is the terminal, and `LiveLine` locks that.
    """

    __slots__ = ("_live", "_live_due", "_log_due", "clock", "logger", "pages", "records",
                 "source", "start")

    def __init__(self, source: str, logger: Any, clock: Callable[[], float], *,
                 log_every: float = LOG_EVERY, live: LiveLine | None = None) -> None:
        self.source, self.logger, self.clock = source, logger, clock
        self.start = clock()
        self.records = 0
        self.pages = 0
        self._log_due = Every(log_every, clock)
        self._live = live
        self._live_due = Every(live.every if live else 0.0, clock)

    def page(self, records: int) -> None:
        self.records += records
        self.pages += 1
        if self._log_due.due():
            elapsed = self.clock() - self.start
            self.logger.info("source.progress", source=self.source, records=self.records,
                             pages=self.pages, rate=round(self._rate(elapsed), 1),
                             elapsed_s=round(elapsed, 1))
        if self._live is not None and self._live_due.due():
            rate = self._rate(self.clock() - self.start)
            self._live.show(f"reading {self.source}: {self.records:,} records, {rate:,.0f}/s")

    def done(self) -> None:
        """The read ended (complete or failed): the live line goes, the log stays."""
        if self._live is not None:
            self._live.clear()

    def _rate(self, elapsed: float) -> float:
        return self.records / elapsed if elapsed > 0 else 0.0


def read_watched(source: Source, logger: Any, clock: Callable[[], float],
                 log_every: float = LOG_EVERY) -> SourceRead:
    """`source.read()` with its progress logged, and shown on the command's live line
    if it has one (see log.configure). Raises SourceError."""
    progress = SourceProgress(source.name, logger, clock, log_every=log_every,
                              live=log.live_line())
    try:
        return source.read(progress)
    finally:
        progress.done()
