"""Benchmark: the pure planner on N desired vs N actual users, in process, vs a git revision.

    .venv/bin/python bench/bench_plan.py                      # 1,000,000 users, 3 rounds
    .venv/bin/python bench/bench_plan.py --users 100000 --rounds 5
    .venv/bin/python bench/bench_plan.py --baseline-rev a971e32  # compare with that commit

The roster has 1% new, 1% changed and 1% departed people (the same mix as
bench_sync.py). Each round times, side by side on the same objects:
  * `plan()` as it is now, with the cyclic GC paused (as `run_once` does) and not;
  * `plan()` from `--baseline-rev` (default HEAD), with that revision's `id_key`, GC on.
Rounds are interleaved so that drift hits all variants alike; medians are printed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syncd.core.model import DesiredUser, NebulyUser  # noqa: E402
from syncd.core.plan import plan  # noqa: E402
from syncd.core.rules import PlanPolicy  # noqa: E402

TODAY = date(2026, 11, 22)
OLD = date(2025, 1, 1)
CITIES = ["Paris", "Berlin", "Austin", "Tokyo", "Milan", "Sydney", "Toronto", "Madrid"]


def build(n: int, desired_cls: Any = DesiredUser, nebuly_cls: Any = NebulyUser
          ) -> tuple[dict[str, Any], list[Any]]:
    """Desired and actual rosters as the engine hands them to plan(): one tags dict
    per distinct combination (as the mapper and decoder share them). The classes
    are the planner's own (a baseline revision compares its own NebulyUser)."""
    k = n // 100
    shared: dict[tuple[str, str], dict[str, str]] = {}

    def tags(i: int, dept: str | None = None) -> dict[str, str]:
        key = (dept or f"D{i % 40:02d}", CITIES[i % len(CITIES)])
        return shared.setdefault(key, {"department": key[0], "region": key[1]})

    desired: dict[str, Any] = {}
    for i in range(n):
        uid = f"user{i:07d}@corp.example"
        desired[uid] = desired_cls(uid, tags(i), "hr", sources=("hr",))
    actual = [nebuly_cls(f"user{i:07d}@corp.example", tags(i, "Stale" if i < 2 * k else None),
                         OLD, None) for i in range(k, n)]
    actual += [nebuly_cls(f"left{j:07d}@corp.example", tags(j), OLD, None) for j in range(k)]
    return desired, actual


def baseline_module(rev: str) -> ModuleType:
    """syncd/plan.py at `rev`, importing syncd/model.py at `rev` (its own id_key)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    model = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:syncd/model.py"],
                           check=True, capture_output=True, text=True).stdout
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:syncd/plan.py"],
                            check=True, capture_output=True, text=True).stdout
    (tmp / "baseline_model.py").write_text(model)
    (tmp / "baseline_plan.py").write_text(source.replace("from syncd.core.model import",
                                                         "from baseline_model import"))
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location("baseline_plan", tmp / "baseline_plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_plan"] = module
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], Any], gc_on: bool) -> tuple[float, Any]:
    gc.collect()
    if gc_on:
        gc.enable()
    else:
        gc.disable()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        gc.enable()
    return seconds, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rev", default="HEAD")
    args = parser.parse_args()
    started = time.perf_counter()
    desired, actual = build(args.users)
    policy = PlanPolicy(managed_tag_keys=frozenset({"department", "region"}))
    base = baseline_module(args.baseline_rev)
    base_desired, base_actual = build(args.users, sys.modules["baseline_model"].DesiredUser,
                                      sys.modules["baseline_model"].NebulyUser)
    base_policy = base.PlanPolicy(managed_tag_keys=frozenset({"department", "region"}))
    print(f"{args.users:,} desired vs {len(actual):,} actual built (twice) in "
          f"{time.perf_counter() - started:.1f}s; {args.rounds} rounds")
    variants: dict[str, Callable[[], tuple[float, Any]]] = {
        "plan, GC paused (as run_once)": lambda: timed(
            lambda: plan(desired, actual, policy, TODAY), gc_on=False),
        "plan, GC on": lambda: timed(lambda: plan(desired, actual, policy, TODAY), gc_on=True),
        f"plan at {args.baseline_rev}, GC on": lambda: timed(
            lambda: base.plan(base_desired, base_actual, base_policy, TODAY), gc_on=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    counts: dict[str, dict[str, int]] = {}
    for round_no in range(1, args.rounds + 1):
        for name, run in variants.items():
            seconds, result = run()
            times[name].append(seconds)
            counts[name] = result.counts()
            del result
            print(f"  r{round_no} {name:34s} {seconds:6.2f}s", flush=True)
    first = next(iter(counts.values()))
    if any(c != first for c in counts.values()):
        print(f"!! the variants disagree: {counts}")
    print(f"\nplan counts: {first}")
    reference = statistics.median(times[f"plan at {args.baseline_rev}, GC on"])
    print(f"medians of {args.rounds} rounds, {args.users:,} users:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:6.2f}s  ({median / reference:.2f}x the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
