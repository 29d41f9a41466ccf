"""Benchmark: one `syncd once` at enterprise scale, per phase, against the physical baselines.

    .venv/bin/python bench/bench_sync.py --users 10000 --rounds 3
    .venv/bin/python bench/bench_sync.py --users 100000 --rounds 3
    .venv/bin/python bench/bench_sync.py --users 1000000 --rounds 1 --sources ldap
    .venv/bin/python bench/bench_sync.py --users 10000 --sources csv --scenarios nochange

Builds a synthetic directory of N people (a throwaway slapd loaded with slapadd,
and/or a CSV export) and a Nebuly stand-in already holding the roster, then times
one `syncd once` as a subprocess (its own CPU and peak RSS), reading the
per-phase durations (read, get, plan, apply) from its `sync.finished` log line.

Scenarios: `changes` (Nebuly lacks 1% of the directory, holds stale tags for
another 1% and 1% people who left: inserts, updates and deactivations) and
`nochange` (Nebuly already equals the directory: zero writes expected).

Baselines, each in its own process, in the same rounds (interleaved, so drift
hits everyone alike):
  * `ldapsearch -E pr=1000/noprompt` reading the same entries and attributes
    with the same filter: the physical floor of the LDAP read;
  * with `--transport plain`, bench/ldap_pager.py: syncd's python-ldap backend
    paging through the same search and nothing else (what any Python reader
    over python-ldap pays);
  * `json.loads` of the very GET body syncd receives vs syncd's `decode_roster`
    of it (time inside the process, and peak RSS).

The stand-in runs as its own process (its CPU and memory are not counted) and
is re-seeded before each run through its /_standin/ control endpoints; it also
reports the write calls it received. Generated data lives under /tmp and is
removed at the end. Nothing here asserts: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_data import (  # noqa: E402
    API_KEY,
    FILTER,
    LDAP_ATTRIBUTES,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    build_data,
    minimum_per_kind,
    minimum_write_calls,
    write_config,
    write_roster,
)

VENV_BIN = Path(sys.executable).parent
SYNCD = str(VENV_BIN / "syncd") if (VENV_BIN / "syncd").exists() else "syncd"
TIME = "/usr/bin/time"
# syncd's python-ldap backend paging through the same search, and nothing more.
PAGER = "python-ldap pager only"


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(cmd: list[str], env: dict[str, str] | None = None,
            stdout_path: Path | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Wall, CPU (user+sys) and peak RSS of one child process, via GNU time.

    The RSS is the command's own (GNU time forks and execs it), not this process's.
    """
    full = [TIME, "-f", "@@time %e %U %S %M", *cmd]
    start = time.perf_counter()
    out = stdout_path.open("wb") if stdout_path else subprocess.PIPE
    try:
        done = subprocess.run(full, stdout=out, stderr=subprocess.PIPE, env=env, check=False,
                              cwd=cwd)
    finally:
        if stdout_path:
            out.close()  # type: ignore[union-attr]
    wall = time.perf_counter() - start
    stderr = done.stderr.decode(errors="replace")
    stats = [line for line in stderr.splitlines() if line.startswith("@@time ")]
    if not stats:
        raise RuntimeError(f"{cmd[0]} gave no timing: {stderr[-800:]}")
    _, elapsed, user, system, rss = stats[-1].split()
    return {"wall": wall, "elapsed": float(elapsed), "cpu": float(user) + float(system),
            "rss_mib": float(rss) / 1024, "rc": done.returncode,
            "stdout": done.stdout if stdout_path is None else b"", "stderr": stderr}


class StandIn:
    """The Nebuly stand-in in its own process (python -m standins.nebuly)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "NEBULY_API_KEY": API_KEY}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "standins.nebuly", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=ROOT)  # the stand-ins live in the repository, not the package
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.control("GET", "calls")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("stand-in did not start")

    def control(self, method: str, resource: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(f"{self.url}/_standin/{resource}", data=body,
                                         method=method)
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def seed(self, roster_file: Path) -> None:
        self.control("PUT", "users", roster_file.read_bytes())
        self.control("DELETE", "calls")

    def write_calls(self) -> int:
        return int(self.control("GET", "calls")["write_calls"])

    def get_body(self, path: Path) -> int:
        request = urllib.request.Request(f"{self.url}/api/external/platform-users",
                                         headers={"Authorization": f"Bearer {API_KEY}"})
        with urllib.request.urlopen(request, timeout=600) as response, \
                path.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        return path.stat().st_size

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- the decode baselines (run as `bench_sync.py --decode KIND FILE`) -------------------


def decode_worker(kind: str, path: str) -> int:
    """Child process: decode the GET body once; prints the time and the memory it took.

    Imports happen before the clock starts; `rss_before_mib` is the peak RSS with the
    body read and the decoder imported, so `rss_mib - rss_before_mib` is the decode's own.
    """
    import gc
    import resource

    if kind.startswith("decode_roster"):
        if kind.endswith("@base"):
            sys.path.remove(str(ROOT))  # import syncd from PYTHONPATH (the baseline tree)
        from syncd.nebuly.client import decode_roster
    elif kind == "msgspec":
        import msgspec
    body = Path(path).read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if kind == "json.loads":
        count = len(json.loads(body)["users"])
    elif kind == "msgspec":
        count = len(msgspec.json.decode(body)["users"])
    else:
        count = len(decode_roster(body).users)
    seconds = time.perf_counter() - start
    gc.collect()
    print(json.dumps({"count": count, "decode_s": seconds, "rss_before_mib": before}))
    return 0


# --- one size -------------------------------------------------------------------------------


def finished_event(stderr: str) -> dict[str, Any]:
    for line in reversed(stderr.splitlines()):
        if '"sync.finished"' in line:
            return dict(json.loads(line))
    raise RuntimeError(f"no sync.finished event: {stderr[-1500:]}")


def count_dns(path: Path) -> int:
    count = 0
    tail = b"\n"  # the file's start counts as a line start
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            # Keep the previous chunk's last 4 bytes so a match across chunks counts once.
            count += (tail + chunk).count(b"\ndn: ")
            tail = chunk[-4:]
    return count


def med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def run_size(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    sources = args.sources.split(",")
    scenarios = args.scenarios.split(",")
    rounds = args.rounds
    base = Path(args.tmp)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"bench-sync-{n}-", dir=base))
    print(f"\n=== {n:,} users; sources {sources}; scenarios {scenarios}; {rounds} round(s); "
          f"LDAP config {args.ldap_config} over {args.transport}; load average "
          f"{os.getloadavg()[0]:.1f} ===", flush=True)
    standin = StandIn()
    server = None
    summary: list[dict[str, Any]] = []
    try:
        data, server = build_data(work, n, sources)
        rosters: dict[str, tuple[Path, dict[str, int]]] = {}
        for scenario in scenarios:
            path = work / f"nebuly-{scenario}.json"
            rosters[scenario] = (path, write_roster(path, n, scenario))
        configs: dict[str, Path] = {}
        for source in sources:
            configs[source] = work / f"{source}.yaml"
            write_config(configs[source], source, standin.url, data, args.ldap_config,
                         args.transport)
        # The GET body syncd will receive (the stand-in encodes the same way every time).
        body_path = work / "get-body.json"
        standin.seed(rosters[scenarios[0]][0])
        body_bytes = standin.get_body(body_path)
        print(f"  GET body: {body_bytes / 1e6:.1f} MB", flush=True)

        results: dict[str, list[dict[str, Any]]] = {}
        trees = ["", args.baseline_tree] if args.baseline_tree else [""]
        variants = [(source, scenario, tree) for source in sources for scenario in scenarios
                    for tree in trees]
        decoders = [] if args.no_decode else ["json.loads", "decode_roster"] + (
            ["decode_roster@base"] if args.baseline_tree else [])
        env = {**os.environ, "LDAPTLS_CACERT": data.get("ca_file", "")}
        ldap_out = work / "ldapsearch.out"
        for round_no in range(1, rounds + 1):
            for source, scenario, tree in variants:
                roster_path, counts = rosters[scenario]
                standin.seed(roster_path)
                run_env = ({**os.environ, "PYTHONPATH": tree} if tree else None)
                res = measure([SYNCD, "once", "--config", str(configs[source])], run_env,
                              cwd=work)
                event = finished_event(res["stderr"])
                res |= {f: event.get(f, 0) for f in (
                    "read_s", "get_s", "plan_s", "apply_s", "total_s", "write_calls",
                    "inserted", "updated", "deactivated", "exit_code", "desired_users",
                    "nebuly_users", "unchanged")}
                res["server_writes"] = standin.write_calls()
                res["min_writes"] = minimum_write_calls(counts)
                res["min_per_kind"] = minimum_per_kind(counts)
                expect = (counts["insert"], counts["update"], counts["deactivate"])
                got = (res["inserted"], res["updated"], res["deactivated"])
                if res["rc"] != 0 or got != expect:
                    print(f"  !! {source}/{scenario}: exit {res['rc']}, "
                          f"counts {got} != {expect}", flush=True)
                key = f"syncd once {source}/{scenario}" + (" @base" if tree else "")
                results.setdefault(key, []).append(res)
                print(f"  r{round_no} {key:28s} wall {res['wall']:6.2f}s "
                      f"cpu {res['cpu']:6.2f}s rss {res['rss_mib']:6.0f} MiB | "
                      f"read {res['read_s']:.2f} get {res['get_s']:.2f} "
                      f"plan {res['plan_s']:.2f} apply {res['apply_s']:.2f} "
                      f"outside {res['wall'] - res['total_s']:.2f} | "
                      f"writes {res['server_writes']} (min {res['min_writes']})",
                      flush=True)
            if server is not None:
                url = data["ldap_url"] if args.transport == "plain" else data["ldaps_url"]
                cmd = ["ldapsearch", "-x", "-LLL", "-H", url, "-D", SERVICE_DN,
                       "-w", SERVICE_PASSWORD, "-b", PEOPLE, "-E", "pr=1000/noprompt",
                       FILTER, *LDAP_ATTRIBUTES]
                res = measure(cmd, env, stdout_path=ldap_out)
                res["entries"] = count_dns(ldap_out)
                ldap_out.unlink()
                results.setdefault("ldapsearch", []).append(res)
                print(f"  r{round_no} {'ldapsearch':28s} wall {res['wall']:6.2f}s "
                      f"cpu {res['cpu']:6.2f}s rss {res['rss_mib']:6.0f} MiB | "
                      f"{res['entries']} entries", flush=True)
                if args.transport == "plain":  # the floor script speaks plain LDAP only
                    res = measure([sys.executable, str(ROOT / "bench" / "ldap_pager.py"), url,
                                   SERVICE_DN, SERVICE_PASSWORD, PEOPLE, FILTER,
                                   *LDAP_ATTRIBUTES])
                    entries = res["stdout"].decode().strip()
                    if res["rc"] != 0 or entries != str(results["ldapsearch"][-1]["entries"]):
                        raise RuntimeError(f"the pager failed or read {entries or 'nothing'}: "
                                           f"{res['stderr'][-800:]}")
                    results.setdefault(PAGER, []).append(res)
                    print(f"  r{round_no} {PAGER:28s} wall {res['wall']:6.2f}s "
                          f"cpu {res['cpu']:6.2f}s rss {res['rss_mib']:6.0f} MiB | "
                          f"{entries} entries", flush=True)
            for kind in decoders:
                res = measure([sys.executable, __file__, "--decode", kind, str(body_path)],
                              {**os.environ, "PYTHONPATH": args.baseline_tree}
                              if kind.endswith("@base") else None)
                res |= json.loads(res["stdout"])
                results.setdefault(f"decode {kind}", []).append(res)
                print(f"  r{round_no} {'decode ' + kind:28s} wall {res['wall']:6.2f}s "
                      f"cpu {res['cpu']:6.2f}s rss {res['rss_mib']:6.0f} MiB | "
                      f"decode {res['decode_s']:.2f}s, "
                      f"+{res['rss_mib'] - res['rss_before_mib']:.0f} MiB over body+imports "
                      f"({res['count']} users)", flush=True)

        print(f"\nload average (1, 5, 15 min) at the end: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        if "ldapsearch" in results:
            for key, rows in results.items():
                if key.startswith("syncd once ldap"):
                    per_round = [r["wall"] / b["wall"]
                                 for r, b in zip(rows, results["ldapsearch"], strict=True)]
                    print(f"  per round, {key} / ldapsearch: "
                          f"{', '.join(f'{x:.2f}' for x in per_round)}")
        print(f"\n--- medians, {n:,} users, {rounds} round(s) ---")
        print(f"{'what':30s} {'wall':>7s} {'cpu':>7s} {'RSS MiB':>8s} {'read':>6s} "
              f"{'get':>6s} {'plan':>6s} {'apply':>6s} {'run':>6s} {'writes':>7s} {'min':>4s}")
        for key, rows in results.items():
            row: dict[str, Any] = {"users": n, "what": key, "runs": len(rows),
                                   "wall": med(rows, "wall"), "cpu": med(rows, "cpu"),
                                   "rss_mib": med(rows, "rss_mib")}
            line = (f"{key:30s} {row['wall']:6.2f}s {row['cpu']:6.2f}s "
                    f"{row['rss_mib']:8.0f}")
            if key.startswith("syncd"):
                for phase in ("read_s", "get_s", "plan_s", "apply_s", "total_s"):
                    row[phase] = med(rows, phase)
                    line += f" {row[phase]:6.2f}"
                row["writes"] = max(r["server_writes"] for r in rows)
                row["min_writes"] = rows[0]["min_writes"]
                line += f" {row['writes']:7d} {row['min_writes']:4d}"
            elif key.startswith("decode"):
                row["decode_s"] = med(rows, "decode_s")
                row["decode_mib"] = statistics.median(r["rss_mib"] - r["rss_before_mib"]
                                                      for r in rows)
                line += f"  decode {row['decode_s']:.2f}s +{row['decode_mib']:.0f} MiB"
            print(line)
            summary.append(row)
        by = {r["what"]: r for r in summary}
        print("\nratios (same run, medians):")
        if "ldapsearch" in by:
            for key, row in by.items():
                if key.startswith("syncd once ldap"):
                    print(f"  {key} wall / ldapsearch wall = "
                          f"{row['wall'] / by['ldapsearch']['wall']:.2f}x; "
                          f"read phase / ldapsearch = "
                          f"{row['read_s'] / by['ldapsearch']['wall']:.2f}x")
                    if PAGER in by:
                        print(f"  {key} wall / {PAGER} wall = "
                              f"{row['wall'] / by[PAGER]['wall']:.2f}x; CPU beyond the "
                              f"pager's: {row['cpu'] - by[PAGER]['cpu']:.2f}s")
            if PAGER in by:
                print(f"  {PAGER} wall / ldapsearch wall = "
                      f"{by[PAGER]['wall'] / by['ldapsearch']['wall']:.2f}x, CPU "
                      f"{by[PAGER]['cpu']:.2f}s against {by['ldapsearch']['cpu']:.2f}s "
                      "(the same search through python-ldap, nothing else)")
        for key, row in by.items():
            base_row = by.get(f"{key} @base")
            if base_row and key.startswith("syncd"):
                print(f"  {key}: now / baseline = wall {row['wall'] / base_row['wall']:.2f}x, "
                      f"cpu {row['cpu'] / base_row['cpu']:.2f}x, "
                      f"peak RSS {row['rss_mib'] / base_row['rss_mib']:.2f}x")
        if "decode decode_roster@base" in by:
            d, b = by["decode decode_roster"], by["decode decode_roster@base"]
            print(f"  decode_roster now / baseline: time {d['decode_s'] / b['decode_s']:.2f}x, "
                  f"peak RSS {d['rss_mib'] / b['rss_mib']:.2f}x")
        if "decode json.loads" in by and "decode decode_roster" in by:
            j, d = by["decode json.loads"], by["decode decode_roster"]
            print(f"  decode_roster / json.loads: time {d['decode_s'] / j['decode_s']:.2f}x, "
                  f"peak RSS {d['rss_mib'] / j['rss_mib']:.2f}x, memory the decode adds "
                  f"{d['decode_mib'] / max(j['decode_mib'], 1):.2f}x")
        return summary
    finally:
        standin.stop()
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def compiled_bytecode(tmp: Path, packages: list[Path]) -> None:
    """Run every command with compiled bytecode, as an installed package has it.

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 would compile syncd's
    sources at every start (about 0.15 s): the children inherit a cache outside the
    checkout instead, filled here once.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    for package in packages:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def sizes(text: str) -> Iterator[int]:
    for part in text.split(","):
        yield int(part.replace("_", "").replace("k", "000").replace("M", "000000"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="10000", help="comma-separated sizes, e.g. 10k,100k")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sources", default="ldap,csv", help="ldap,csv (comma-separated)")
    parser.add_argument("--scenarios", default="changes,nochange")
    parser.add_argument("--tmp", default="/tmp/syncd-bench", help="where generated data goes")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--json", type=Path, help="also write the medians as JSON here")
    parser.add_argument("--baseline-tree", default="",
                        help="a copy of an older syncd/ (e.g. `git archive HEAD syncd | tar -x "
                             "-C DIR`): also run it, same data, same rounds (@base)")
    parser.add_argument("--ldap-config", choices=("default", "tuned"), default="tuned",
                        help="default: no page_size/backend/timeout in the LDAP source "
                             "(syncd's defaults); tuned: page_size 1000 pinned")
    parser.add_argument("--transport", choices=("ldaps", "plain"), default="ldaps",
                        help="plain: ldap:// with allow_plaintext (syncd and ldapsearch alike)")
    parser.add_argument("--no-decode", action="store_true",
                        help="skip the in-process decode baselines (json.loads, decode_roster)")
    parser.add_argument("--decode", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode:
        return decode_worker(*args.decode)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, syncd = {SYNCD}")
    compiled_bytecode(Path(args.tmp), [ROOT / "syncd"] + (
        [Path(args.baseline_tree) / "syncd"] if args.baseline_tree else []))
    summary: list[dict[str, Any]] = []
    for n in sizes(args.users):
        summary += run_size(n, args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
