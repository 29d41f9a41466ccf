"""Benchmark: start-up of the `syncd` command for a CSV-only config (import and config).

    .venv/bin/python bench/bench_startup.py            # 7 rounds
    .venv/bin/python bench/bench_startup.py --rounds 15

Wall time of each command in its own process, interleaved round by round, medians
printed next to `python -c pass` (the interpreter alone):
  * `syncd --help`, `syncd validate`, and `syncd once` syncing one person into a
    Nebuly stand-in (its own process) - for a one-line CSV that is all start-up;
  * which heavy libraries a CSV-only `syncd once` imports (none of the directory
    clients should be), and the slowest imports from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_sync import API_KEY, SYNCD, StandIn, compiled_bytecode  # noqa: E402

HEAVY = ("ldap", "ldap3", "msgraph", "azure", "kiota_abstractions", "apscheduler",
         "prometheus_client", "cryptography", "pyasn1")


def write_files(work: Path, url: str) -> Path:
    (work / "roster.csv").write_text("email,department\nann@corp.example,Sales\n")
    config = work / "syncd.yaml"
    config.write_text(
        f"nebuly:\n  base_url: {url}\n  api_key: {API_KEY}\n"
        "sources:\n  - name: hr\n    type: csv\n    path: ./roster.csv\n"
        '    end_user: "{email}"\n    tags:\n      department: "{department}"\n'
        "logging:\n  format: json\n")
    return config


def timed(cmd: list[str], env: dict[str, str] | None, cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `cmd` in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {done.stderr.decode(errors='replace')[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def imported_heavy(python: str, config: Path) -> list[str]:
    code = ("import sys; from syncd.app.cli import main; "
            "rc = main(['once', '--config', sys.argv[1]]);"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules)); sys.exit(rc)")
    done = subprocess.run([python, "-c", code, str(config)], capture_output=True,
                          text=True, check=True)
    return done.stdout.split()


def instructions(cmd: list[str], env: dict[str, str] | None, cwd: Path) -> int:
    """Instructions one run of `cmd` executes, counted by valgrind's callgrind: the same
    count whatever else the machine is doing, where wall and CPU times move by 10-30%."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *cmd], capture_output=True, text=True, check=True, env=env, cwd=cwd)
    counted = [line for line in done.stderr.splitlines() if "Collected :" in line]
    return int(counted[-1].split(":")[-1])


def slowest_imports(python: str, config: Path, top: int) -> list[tuple[int, str]]:
    done = subprocess.run([python, "-X", "importtime", "-m", "syncd.app.cli", "once",
                           "--config", str(config)], capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            # Top-level imports only (no leading indentation beyond one space).
            if not name.startswith("  "):
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--python", default="",
                        help="run syncd from this checkout with another interpreter, e.g. a "
                             "venv with only the image's packages (requirements/slim.txt): "
                             "the dev venv also holds rich, click and pygments, which httpx "
                             "and structlog import when they are installed")
    parser.add_argument("--tmp", default="/tmp/syncd-bench", help="bytecode cache goes here")
    parser.add_argument("--baseline-tree", default="",
                        help="a copy of an older syncd/ (`git archive REV syncd | tar -x -C "
                             "DIR`): also time its validate and once, same rounds (@base)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions once with valgrind "
                             "(callgrind): a figure machine noise does not move")
    args = parser.parse_args()
    compiled_bytecode(Path(args.tmp), [ROOT / "syncd"] + (
        [Path(args.baseline_tree) / "syncd"] if args.baseline_tree else []))
    python = args.python or sys.executable
    # With another interpreter or a baseline, both trees run as `python -m` with the
    # tree on PYTHONPATH, from a folder holding no syncd/ (`-m` puts the working
    # folder first on the path, ahead of PYTHONPATH).
    by_path = bool(args.python or args.baseline_tree)
    if by_path:
        os.environ["PYTHONPATH"] = str(ROOT)
    syncd = [python, "-m", "syncd.app.cli"] if by_path else [SYNCD]
    base_env = {**os.environ, "PYTHONPATH": args.baseline_tree}
    standin = StandIn()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            config = write_files(Path(tmp), standin.url)
            commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
                "python -c pass": ([python, "-c", "pass"], None),
                "syncd --help": ([*syncd, "--help"], None),
                "syncd validate (csv)": ([*syncd, "validate", "--config", str(config)], None),
                "syncd once (csv, 1 person)": ([*syncd, "once", "--config", str(config)], None),
            }
            if args.baseline_tree:
                for label, env in (("now", None), ("@base", base_env)):
                    where = subprocess.run([python, "-c", "import syncd; print(syncd.__file__)"],
                                           capture_output=True, text=True, check=True, env=env,
                                           cwd=tmp).stdout.strip()
                    print(f"syncd {label}: {where}")
                base = [python, "-m", "syncd.app.cli"]
                commands["syncd validate (csv) @base"] = (
                    [*base, "validate", "--config", str(config)], base_env)
                commands["syncd once (csv, 1 person) @base"] = (
                    [*base, "once", "--config", str(config)], base_env)
            walls: dict[str, list[float]] = {name: [] for name in commands}
            cpus: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, (cmd, env) in commands.items():
                    seconds, cpu = timed(cmd, env, Path(tmp))
                    walls[name].append(seconds)
                    cpus[name].append(cpu)
            floor = statistics.median(walls["python -c pass"])
            print(f"{python}, {os.cpu_count()} CPUs, load average "
                  f"{os.getloadavg()[0]:.1f}; medians of {args.rounds} interleaved rounds "
                  "(wall and CPU, own process):")
            for name, values in walls.items():
                median = statistics.median(values)
                print(f"  {name:34s} {median:6.3f}s  (+{median - floor:.3f}s over the "
                      f"interpreter; min {min(values):.3f}s, max {max(values):.3f}s; "
                      f"CPU {statistics.median(cpus[name]):.3f}s)")
            for name in ("syncd validate (csv)", "syncd once (csv, 1 person)"):
                if f"{name} @base" in walls:
                    now, before = (statistics.median(walls[k]) for k in (name, f"{name} @base"))
                    now_cpu, before_cpu = (statistics.median(cpus[k])
                                           for k in (name, f"{name} @base"))
                    print(f"  {name}: now / baseline = wall {now / before:.2f}x, "
                          f"CPU {now_cpu / before_cpu:.2f}x")
            if args.instructions:
                print("\ninstructions (valgrind callgrind; one run each, repeatable):")
                counts = {name: instructions(cmd, env, Path(tmp))
                          for name, (cmd, env) in commands.items()}
                for name, count in counts.items():
                    print(f"  {name:34s} {count / 1e9:6.3f} billion")
                for name in ("syncd validate (csv)", "syncd once (csv, 1 person)"):
                    if f"{name} @base" in counts:
                        print(f"  {name}: now / baseline = "
                              f"{counts[name] / counts[f'{name} @base']:.3f}x")
            heavy = imported_heavy(python, config)
            print(f"\nheavy libraries a CSV-only `syncd once` imports: {heavy or 'none'} "
                  f"(checked: {', '.join(HEAVY)})")
            print("\nslowest top-level imports of `syncd once` (python -X importtime, "
                  "cumulative):")
            for cumulative, name in slowest_imports(python, config, 8):
                print(f"  {cumulative / 1000:7.1f} ms  {name}")
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
