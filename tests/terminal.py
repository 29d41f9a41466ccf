"""Running the real `syncd` with its stdout and stderr on terminals (ptys) or pipes."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def _drain(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal's other end is closed: all was read
            return
        if not chunk:
            return
        into.append(chunk)


def run_on_terminals(*args: str, stdout_tty: bool = True, stderr_tty: bool = True,
                     env: dict[str, str] | None = None) -> Ran:
    """`syncd ARGS`; each stream a pty of its own or a pipe. Both are read while the
    command runs, so a long output never blocks it."""
    ends: dict[str, tuple[int, int]] = {}
    for name, tty in (("stdout", stdout_tty), ("stderr", stderr_tty)):
        ends[name] = pty.openpty() if tty else os.pipe()
    proc_env = {k: v for k, v in os.environ.items()
                if k not in ("NO_COLOR", "FORCE_COLOR", "SYNCD_LIVE_EVERY")}
    proc_env |= env or {}
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    readers = [threading.Thread(target=_drain, args=(ends[n][0], chunks[n])) for n in chunks]
    try:
        proc = subprocess.Popen([sys.executable, "-m", "syncd.app.cli", *args],
                                stdout=ends["stdout"][1], stderr=ends["stderr"][1],
                                stdin=subprocess.DEVNULL, cwd=REPO, env=proc_env)
        for name in chunks:
            os.close(ends[name][1])
        for reader in readers:
            reader.start()
        code = proc.wait(timeout=120)
        for reader in readers:
            reader.join(timeout=30)
    finally:
        for name in chunks:
            os.close(ends[name][0])
    # A pty turns "\n" into "\r\n": undo it, so only syncd's own "\r" remain.
    text = {n: b"".join(c).decode().replace("\r\n", "\n") for n, c in chunks.items()}
    return Ran(code, text["stdout"], text["stderr"])
