"""Crash-consistency trials: kill -9 `syncd once` at random points of its apply phase,
then run normally until the roster is right. Prints the figures; asserts nothing.

The CI variant (30 trials) is tests/test_crash.py; this runs the same trial many
more times:

    .venv/bin/python bench/crash_trials.py --trials 200 [--seed 1000] [--max-runs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standins.nebuly.server import NebulyStandIn
from syncd import log
from tests.conftest import CANARY_API_KEY
from tests.test_crash import WRITE_CALLS, crash_trial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first trial")
    parser.add_argument("--max-runs", type=int, default=5,
                        help="normal runs allowed after the kill before a trial fails")
    args = parser.parse_args(argv)

    with open("/dev/null", "w") as devnull:
        log.configure("json", "error", devnull)
        start = time.perf_counter()
        trials = []
        # The trial's config carries the suite's canary key: the stand-in accepts it.
        with NebulyStandIn(api_key=CANARY_API_KEY) as server, \
                tempfile.TemporaryDirectory() as tmp:
            for n in range(args.trials):
                trials.append(crash_trial(server, Path(tmp), args.seed + n, args.max_runs))
                if (n + 1) % 25 == 0:
                    print(f"  {n + 1} trials...", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - start

    converged = [t for t in trials if t.converged]
    runs = Counter(t.runs_to_converge for t in converged)
    mid_apply = sum(1 for t in trials if 0 < t.writes_before_kill < WRITE_CALLS
                    and not t.exited_before_kill)
    before = sum(1 for t in trials if t.writes_before_kill == 0 and not t.exited_before_kill)
    after = sum(1 for t in trials if t.exited_before_kill
                or t.writes_before_kill >= WRITE_CALLS)
    print(f"trials:                  {len(trials)}")
    print(f"converged:               {len(converged)}")
    print(f"max runs to converge:    {max(runs) if runs else 'n/a'}")
    print(f"runs to converge:        {dict(sorted(runs.items()))}")
    print(f"kill before 1st write:   {before}")
    print(f"kill mid-apply:          {mid_apply}  (of {WRITE_CALLS} write calls per run)")
    print(f"kill after last write:   {after}")
    print(f"in-flight dropped/landed: {sum(t.dropped_in_flight for t in trials)}/"
          f"{sum(not t.dropped_in_flight for t in trials)}")
    print(f"elapsed:                 {elapsed:.1f}s")
    for trial in trials:
        if not trial.converged:
            print(f"NOT CONVERGED seed={trial.seed}: {trial.problems[:5]}")
    return 0 if len(converged) == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
