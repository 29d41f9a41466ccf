"""How often a long operation may say how far it is: at most once per interval.

Shared by everything that reports progress (Nebuly writes, source reads, the live
line on a terminal), so each says "every ~10 s" the same way. The clock is
injected: tests drive it by hand, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable


class Every:
    """`due()` is true at most once per `interval` seconds of `clock`, counted from
    the moment the pace was made: an operation shorter than the interval says nothing.

    Not locked: each pace belongs to the one thread that drives it.
    """

    __slots__ = ("_last", "clock", "interval")

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
