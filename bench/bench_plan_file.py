"""Benchmark: writing a --plan-out file, plain JSON vs with control and bidi characters
escaped (what `syncd plan --plan-out` writes), in the same process, interleaved.

    .venv/bin/python bench/bench_plan_file.py --users 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from syncd.core.text import escape_json_text
from syncd.run.state import write_json_atomic


def plan_doc(users: int) -> dict[str, Any]:
    """A first load's plan as report_json shapes it: every user an insert."""
    return {"run_id": "20261122T101500Z-3fa2c1", "plan": {"insert": [
        {"end_user": f"user{i:07d}@example.com",
         "tags": {"department": f"D{i % 40}", "region": "FR", "role": "Analyst"},
         "active_from": "2026-01-01", "active_to": None} for i in range(users)]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    doc = plan_doc(args.users)
    times: dict[str, list[float]] = {"plain": [], "escaped": []}
    with tempfile.TemporaryDirectory(prefix="bench-plan-file-") as tmp:
        path = Path(tmp) / "plan.json"
        for _ in range(args.rounds):
            for name, escape in (("plain", None), ("escaped", escape_json_text)):
                start = time.perf_counter()
                write_json_atomic(path, doc, escape=escape)
                times[name].append(time.perf_counter() - start)
        size = path.stat().st_size
    plain, escaped = (statistics.median(times[k]) for k in ("plain", "escaped"))
    print(f"{args.users} users, {size / 1e6:.1f} MB file, median of {args.rounds} rounds")
    print(f"  plain    {plain:.2f} s")
    print(f"  escaped  {escaped:.2f} s   escaped / plain = {escaped / plain:.2f}x")


if __name__ == "__main__":
    main()
