"""Running each benchmark reader in a process of its own (shared by the source benchmarks).

A reader is timed twice in its process: "cold" includes the first import of
its libraries (a daemon's first run), "warm" is a later run. Its own peak RSS
(ru_maxrss) is reported; that is why each reader gets a fresh process.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def child(reader: Callable[[], int]) -> None:
    """Time `reader` (which returns how many users it read) twice; print one JSON line."""
    timings, cpu = [], []
    count = 0
    for _ in range(2):
        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        count = reader()
        timings.append(time.perf_counter() - started)
        # CPU of every thread of the process: less shaken by a busy machine than wall time.
        cpu.append(time.process_time() - started_cpu)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"cold": timings[0], "warm": timings[1], "cold_cpu": cpu[0],
                      "warm_cpu": cpu[1], "rss_mib": rss_kib / 1024, "users": count}))


def run_child(script: str, name: str, common: list[str], timeout: float = 1800,
              cwd: str | None = None) -> dict[str, Any]:
    """`script --child NAME COMMON...` in a new interpreter; its JSON line as a dict."""
    done = subprocess.run([sys.executable, script, "--child", name, *common],
                          capture_output=True, text=True, check=False, timeout=timeout, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"{name} reader failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
