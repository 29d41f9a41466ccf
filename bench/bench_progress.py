"""Benchmark: what read progress costs a CSV read, in process, against a git revision.

    .venv/bin/python bench/bench_progress.py                      # 200,000 rows, 7 rounds
    .venv/bin/python bench/bench_progress.py --rows 1000000 --rounds 5 --baseline-rev main

Each round reads the same CSV with:
  * the CSV source of `--baseline-rev` (before it counted rows for progress);
  * this tree's CSV source, told nobody watches (NO_PROGRESS);
  * this tree's CSV source with the run's receiver: `source.progress` every 10 s
    to a logger that drops it, and a live line every 0.25 s to a null terminal.
Reads run with the cyclic GC paused, as in a run. Rounds are interleaved, each
starting with another variant, so that drift hits all variants alike; medians
are printed with their ratio to the baseline, and the cost of one `Every.due()`.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syncd.pace import Every  # noqa: E402
from syncd.run.progress import SourceProgress  # noqa: E402
from syncd.sources.base import NO_PROGRESS, SourceRead  # noqa: E402
from syncd.sources.csv.config import CsvSourceConfig  # noqa: E402
from syncd.sources.csv.source import CsvSource  # noqa: E402
from syncd.terminal import LiveLine  # noqa: E402


class _NullTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


class _DropLog:
    def info(self, event: str, **fields: Any) -> None:
        pass


def _baseline_source(rev: str) -> Any:
    """The CSV source class as it was at `rev`, loaded from git next to this tree's."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:syncd/sources/csv/source.py"],
                          capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("baseline_csv_source")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(text, f"{rev}:syncd/sources/csv/source.py", "exec"), module.__dict__)
    return module.CsvSource


def _write(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "department", "country", "title"])
        out.writerows([f"user{i:07d}@example.com", f"Dept {i % 40}", "FR", "Analyst"]
                      for i in range(rows))


def _timed(read: Callable[[], SourceRead]) -> float:
    """CPU seconds of one read (the machine may be shared: wall time would measure the
    neighbours), with the cyclic GC paused as a run pauses it (syncd.memory.gc_paused)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        result = read()
        seconds = time.process_time() - start
    finally:
        gc.enable()
    assert result.records
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline-rev", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "roster.csv"
        _write(path, args.rows)
        config = CsvSourceConfig.model_validate({"name": "hr", "type": "csv", "path": str(path),
                                                 "end_user": "{email}"})
        before = _baseline_source(args.baseline_rev)(config)
        now = CsvSource(config)
        live = LiveLine(_NullTerminal())

        def watched() -> SourceRead:
            progress = SourceProgress("hr", _DropLog(), time.perf_counter, live=live)
            try:
                return now.read(progress)
            finally:
                progress.done()

        variants: dict[str, Callable[[], SourceRead]] = {
            f"CSV source at {args.baseline_rev}": before.read,
            "this tree, NO_PROGRESS": lambda: now.read(NO_PROGRESS),
            "this tree, log + live line": watched,
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for round_ in range(args.rounds):
            # Each round starts with another variant: no variant is always first.
            for name in order[round_ % 3:] + order[:round_ % 3]:
                times[name].append(_timed(variants[name]))
    reference = statistics.median(times[f"CSV source at {args.baseline_rev}"])
    print(f"medians of {args.rounds} rounds, {args.rows:,} rows (CPU seconds):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:6.3f}s  ({median / reference:.3f}x the baseline)")
    pace = Every(10.0, time.perf_counter)
    looks = 1_000_000
    start = time.perf_counter()
    for _ in range(looks):
        pace.due()
    print(f"  Every.due(), one look: {(time.perf_counter() - start) / looks * 1e9:.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
