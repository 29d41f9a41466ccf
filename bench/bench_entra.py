"""Benchmark: the Entra source (msgraph-sdk, raw JSON pages) vs a plain httpx + json pager.

Both read N users from the local Graph stand-in (same $select, $filter, $top,
client-secret token from the stand-in's HTTPS token endpoint). Each reader runs
in its own subprocess so peak RSS (ru_maxrss) is its own; readers are
interleaved over several repetitions and medians reported. Each child reads
twice: "cold" includes the first import of the libraries (a daemon's first
run), "warm" is a later run in the same process. "sdk" builds a new source
for each read (a new credential, token request and connection, as `syncd
once` does); "sdk-kept" keeps one source open between its reads, as the
daemon does (its warm read is a daemon's later run).

    .venv/bin/python bench/bench_entra.py --users 100000 --reps 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.children import child, run_child

SELECT = "id,accountEnabled,userType,userPrincipalName,country,department,jobTitle"
TEMPLATES = {"department": "{department}", "region": "{country}", "role": "{jobTitle}"}


_KEPT: list[Any] = []  # the source "sdk-kept" reads twice


def read_sdk_kept(args: argparse.Namespace) -> int:
    if not _KEPT:
        from syncd.sources.entra.source import EntraSource

        _KEPT.append(EntraSource(sdk_config(args)))
        _KEPT[0].keep_open()
    return len(_KEPT[0].read().records)


def read_sdk(args: argparse.Namespace) -> int:
    from syncd.sources.entra.source import EntraSource

    return len(EntraSource(sdk_config(args)).read().records)


def sdk_config(args: argparse.Namespace) -> Any:
    from syncd.sources.entra.config import EntraSourceConfig

    return EntraSourceConfig.model_validate({
        "name": "entra", "type": "entra", "tenant_id": args.tenant, "client_id": args.client,
        "client_secret": args.secret, "graph_url": args.graph_url, "authority": args.authority,
        "ca_file": args.ca_file, "end_user": "{userPrincipalName}", "tags": TEMPLATES,
        "page_size": args.page_size,
    })


def read_plain(args: argparse.Namespace) -> int:
    return len(plain_pages(args))


def read_plain_records(args: argparse.Namespace) -> int:
    """The plain pager doing the source's job too: the same SourceRecords as EntraSource."""
    from syncd.sources.base import SourceRecord
    from syncd.sources.entra.attrs import flatten_user

    records = []
    for user in plain_pages(args):
        if user.get("userType") == "Guest":
            continue
        origin = f"{user['userPrincipalName']} (id {user['id']})"
        records.append(SourceRecord(flatten_user(user), origin))
    return len(records)


def plain_pages(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ssl

    import httpx

    verify = ssl.create_default_context(cafile=args.ca_file)
    with httpx.Client(verify=verify, timeout=60) as client:
        token = client.post(
            f"{args.authority}/{args.tenant}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": args.client,
                  "client_secret": args.secret,
                  "scope": "https://graph.microsoft.com/.default"},
        ).raise_for_status().json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        users: list[dict[str, Any]] = []
        url: str | None = f"{args.graph_url}/users"
        params: dict[str, str] | None = {"$select": SELECT, "$filter": "accountEnabled eq true",
                                         "$top": str(args.page_size)}
        while url:
            page = json.loads(client.get(url, params=params, headers=headers)
                              .raise_for_status().content)
            users.extend(page["value"])
            url, params = page.get("@odata.nextLink"), None
    return users


READERS = {"sdk": read_sdk, "sdk-kept": read_sdk_kept, "plain": read_plain,
           "plain+records": read_plain_records}
LABELS = {"sdk": "EntraSource (msgraph-sdk)", "sdk-kept": "EntraSource kept (daemon)",
          "plain": "plain httpx + json", "plain+records": "plain httpx + json + records"}
TARGET = 1.2  # issue 16: cold and warm within 1.2x of the plain pager doing the same job


def parent(args: argparse.Namespace) -> None:
    # The stand-in runs in its own process: children inherit the parent's peak
    # RSS (ru_maxrss survives fork+exec on Linux), so the parent must stay small.
    server = subprocess.Popen(
        [sys.executable, "-m", "standins.entra", "--users", str(args.users)],
        stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1])  # the stand-ins live in the repository
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        common = [
            "--graph-url", info["graph_url"], "--authority", info["authority"],
            "--ca-file", info["ca_file"], "--tenant", info["tenant_id"],
            "--client", info["client_id"], "--secret", info["client_secret"],
            "--page-size", str(args.page_size), "--users", str(args.users),
        ]
        run_child(__file__, "plain", common)  # builds the stand-in's page cache; not counted
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in READERS}
        for rep in range(args.reps):
            order = list(READERS) if rep % 2 == 0 else list(reversed(READERS))
            for name in order:  # interleaved: machine noise hits every reader alike
                result = run_child(__file__, name, common)
                results[name].append(result)
                print(f"rep {rep + 1} {name:13s} cold {result['cold']:6.2f}s "
                      f"warm {result['warm']:6.2f}s rss {result['rss_mib']:6.1f} MiB "
                      f"users {result['users']}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]]) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    def spread(name: str, key: str) -> str:
        values = [r[key] for r in results[name]]
        return f"{min(values):.2f}-{max(values):.2f}"

    print(f"\n{args.users} users in the stand-in, page size {args.page_size}, "
          f"{args.reps} interleaved repetitions, medians:")
    print(f"{'reader':32s} {'cold s':>8s} {'warm s':>8s} {'peak RSS MiB':>13s}   "
          "cold range   warm range (noise)")
    for name in READERS:
        print(f"{LABELS[name]:32s} {median(name, 'cold'):8.2f} {median(name, 'warm'):8.2f} "
              f"{median(name, 'rss_mib'):13.1f}   {spread(name, 'cold'):11s}  "
              f"{spread(name, 'warm')}")
    print(f"{'CPU seconds (all threads)':32s} {'cold':>8s} {'warm':>8s}")
    for name in READERS:
        print(f"{LABELS[name]:32s} {median(name, 'cold_cpu'):8.2f} "
              f"{median(name, 'warm_cpu'):8.2f}")
    for sdk in ("sdk", "sdk-kept"):
        for base in ("plain", "plain+records"):
            ratios = "  ".join(f"{key} {median(sdk, key) / median(base, key):4.2f}x"
                               for key in ("cold", "warm", "cold_cpu", "warm_cpu", "rss_mib"))
            print(f"{sdk:8s} / {base:14s} {ratios}")
    # Per-round ratios too: rounds are interleaved, so a round's readers saw the same load.
    for key in ("cold", "warm"):
        per_round = sorted(a[key] / b[key] for a, b in zip(results["sdk"],
                                                            results["plain+records"],
                                                            strict=True))
        print(f"sdk / plain+records {key} per round: "
              + " ".join(f"{r:.2f}" for r in per_round))
    for key in ("cold", "warm"):
        ratio = median("sdk", key) / median("plain+records", key)
        print(f"target ({key} wall within {TARGET}x of the plain pager doing the same job): "
              f"{'met' if ratio <= TARGET else 'NOT met'} ({ratio:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=999)
    parser.add_argument("--child", choices=list(READERS))
    for name in ("--graph-url", "--authority", "--ca-file", "--tenant", "--client", "--secret"):
        parser.add_argument(name)
    args = parser.parse_args()
    if args.child:
        child(lambda: READERS[args.child](args))
    else:
        parent(args)


if __name__ == "__main__":
    main()
