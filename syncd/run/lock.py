"""One syncd command at a time on a state directory.

The daemon, an admin's `syncd once` and an `approve` all read and write the
grace memory, the pending plans and the run records. Run together they could
count a missing person twice or close a plan another command just applied. An
advisory file lock (flock) on `state_dir/.lock` serialises them; the kernel
drops it when the holder exits, even after kill -9, so a crash never leaves a
stale lock behind. The file names the holder so the message can too.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

LOCK_FILE = ".lock"
_POLL_S = 0.1


class StateLocked(Exception):
    """Another syncd command holds the state directory."""


class StateLock:
    """`with StateLock(state_dir, "syncd once", wait=30):` holds the lock for the block.

    Waits up to `wait` seconds for another holder to finish, then raises
    StateLocked naming that holder (its pid and command).
    """

    def __init__(self, root: Path, holder: str, wait: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.holder = holder
        self.wait = wait
        self.sleep = sleep
        self.clock = clock
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # people's data: private
        path = self.root / LOCK_FILE
        # O_NOFOLLOW: a symlink planted in a shared directory must not redirect the write.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        deadline = self.clock() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.clock() >= deadline:
                    held_by = _read_holder(fd)
                    os.close(fd)
                    raise StateLocked(
                        f"state_dir {self.root} is in use by {held_by}; nothing was done. "
                        "Wait for it to finish, or raise state_lock_wait") from None
                self.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({self.holder})\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    return text or "another syncd command"
