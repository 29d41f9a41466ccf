"""Benchmark: the Entra source's `app:` scope -- 50,000 users assigned through 20 groups.

The Graph stand-in (its own process, `--serve`) holds `--users` users split over
`--groups` groups assigned to one enterprise application, plus `--direct` users
assigned directly (read with getByIds) and some group members also assigned
directly (dates only). Each reader child reads twice: "cold" includes the first
import of msgraph (a daemon's first run), "warm" a later run in the same
process. Requests are counted by the stand-in.

    .venv/bin/python bench/bench_entra_app.py --users 50000 --groups 20 --reps 3
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

APP_ID = "22222222-2222-2222-2222-222222222222"


def serve(args: argparse.Namespace) -> None:
    from standins.entra.apps import Assignment, ServicePrincipal
    from standins.entra.data import Directory, Group, make_users, user_id
    from standins.entra.server import GraphStandin, Identity

    users = make_users(args.users + args.direct)
    per_group = args.users // args.groups
    groups = {f"group-{g}": Group([user_id(i) for i in range(g * per_group, (g + 1) * per_group)])
              for g in range(args.groups)}
    assignments = [Assignment(g, "Group", "2024-09-01T08:00:00Z") for g in groups]
    # Direct-only users (getByIds), and every 10th group member also assigned directly.
    assignments += [Assignment(user_id(i), "User", "2025-03-14T09:30:00Z")
                    for i in range(args.users, args.users + args.direct)]
    assignments += [Assignment(user_id(i), "User", "2025-01-02T10:00:00Z")
                    for i in range(0, args.users, 10)]
    sp = ServicePrincipal("33333333-3333-3333-3333-333333333333", APP_ID, "Agent", [],
                          assignments)
    identity = Identity()
    with GraphStandin(Directory(users, groups, [sp]), identity) as standin:
        print(json.dumps({
            "graph_url": standin.graph_url, "authority": standin.authority,
            "ca_file": str(standin.tls.ca_file), "tenant_id": identity.tenant_id,
            "client_id": identity.client_id, "client_secret": identity.client_secret,
        }), flush=True)
        for _ in sys.stdin:  # one line asks for the counters since the last ask
            print(json.dumps(dict(standin.counters)), flush=True)
            standin.counters.clear()


def child(args: argparse.Namespace) -> None:
    from syncd.sources.entra.config import EntraSourceConfig
    from syncd.sources.entra.source import EntraSource

    config = EntraSourceConfig.model_validate({
        "name": "agent", "type": "entra", "tenant_id": args.tenant, "client_id": args.client,
        "client_secret": args.secret, "graph_url": args.graph_url, "authority": args.authority,
        "ca_file": args.ca_file, "app": APP_ID, "end_user": "{userPrincipalName}",
        "active_from": "{assignedDateTime}",
        "tags": {"department": "{department}", "region": "{country}", "role": "{jobTitle}"},
    })
    timings, count = [], 0
    for _ in range(2):
        gc.collect()
        started = time.perf_counter()
        count = len(EntraSource(config).read().records)
        timings.append(time.perf_counter() - started)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"cold": timings[0], "warm": timings[1], "rss_mib": rss_kib / 1024,
                      "users": count}))


def parent(args: argparse.Namespace) -> None:
    server = subprocess.Popen(
        # -m from the repository root: the stand-ins live there, not in the package.
        [sys.executable, "-m", "bench.bench_entra_app", "--serve", "--users", str(args.users),
         "--groups", str(args.groups), "--direct", str(args.direct)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1])
    assert server.stdin is not None and server.stdout is not None
    results: list[dict[str, Any]] = []
    try:
        info = json.loads(server.stdout.readline())
        common = ["--graph-url", info["graph_url"], "--authority", info["authority"],
                  "--ca-file", info["ca_file"], "--tenant", info["tenant_id"],
                  "--client", info["client_id"], "--secret", info["client_secret"]]
        for rep in range(args.reps):
            done = subprocess.run([sys.executable, __file__, "--child", *common],
                                  capture_output=True, text=True, check=False, timeout=1800)
            if done.returncode != 0:
                raise SystemExit(f"reader failed:\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            server.stdin.write("counters\n")
            server.stdin.flush()
            counters = json.loads(server.stdout.readline())
            result["requests_per_read"] = counters.get("graph", 0) / 2
            result["get_by_ids"] = counters.get("get_by_ids", 0) / 2
            results.append(result)
            print(f"rep {rep + 1} cold {result['cold']:6.2f}s warm {result['warm']:6.2f}s "
                  f"rss {result['rss_mib']:6.1f} MiB users {result['users']} "
                  f"requests/read {result['requests_per_read']:g}", flush=True)
    finally:
        server.stdin.close()
        server.terminate()
        server.wait(timeout=30)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(f"\n{args.users} users through {args.groups} assigned groups + {args.direct} "
          f"assigned directly, {args.reps} repetitions, medians: cold {median('cold'):.2f}s, "
          f"warm {median('warm'):.2f}s, peak RSS {median('rss_mib'):.0f} MiB, "
          f"{median('requests_per_read'):g} Graph requests a read "
          f"({median('get_by_ids'):g} getByIds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--direct", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--child", action="store_true")
    for name in ("--graph-url", "--authority", "--ca-file", "--tenant", "--client", "--secret"):
        parser.add_argument(name)
    args = parser.parse_args()
    if args.serve:
        serve(args)
    elif args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
