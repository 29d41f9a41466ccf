"""Benchmark: read N users from a throwaway slapd with each backend vs ldapsearch.

    .venv/bin/python bench/bench_ldap.py                 # 100,000 users, 5 rounds
    .venv/bin/python bench/bench_ldap.py --quick         # 10,000 users, 3 rounds
    .venv/bin/python bench/bench_ldap.py --profile ldap3 # cProfile one read in-process

Every read runs in its own process (ours through LdapSource.read(), so imports and
start-up count), interleaved round by round so that drift hits all clients alike;
CPU and peak RSS come from that child's rusage (os.wait4). Medians are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syncd.sources.ldap.config import LdapSourceConfig  # noqa: E402
from syncd.sources.ldap.source import LdapSource  # noqa: E402

# The worker processes import only what a real read needs; tests.slapd (and its
# cryptography import) is loaded by the parent alone.
if TYPE_CHECKING:
    from tests.slapd import Slapd

PEOPLE = "ou=people,dc=corp,dc=example"
SERVICE_DN = "cn=syncd,ou=service,dc=corp,dc=example"
SERVICE_PASSWORD = "service-password"  # the throwaway server's account (tests/slapd.py)

ATTRIBUTES = ["uid", "cn", "sn", "givenName", "mail", "departmentNumber", "l", "title",
              "employeeNumber"]
FILTER = "(&(objectClass=inetOrgPerson)(!(pwdAccountLockedTime=*)))"  # what our source sends


def write_ldif(path: Path, users: int) -> None:
    from tests.slapd import user_ldif

    with path.open("w") as out:
        for i in range(users):
            out.write(user_ldif(
                f"user{i:06d}", givenName=f"Given{i}", departmentNumber=f"D{i % 40}",
                l=["Paris", "Berlin", "Austin", "Tokyo"][i % 4], title="Analyst",
                employeeNumber=str(100000 + i)))


def source_config(url: str, ca_file: str, backend: str, page_size: int) -> LdapSourceConfig:
    tags = {a.lower(): f"{{{a}}}" for a in ATTRIBUTES if a != "mail"}
    return LdapSourceConfig.model_validate({
        "name": "bench", "type": "ldap", "url": url, "ca_file": ca_file,
        "bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD, "base_dn": PEOPLE,
        "backend": backend, "page_size": page_size, "end_user": "{mail}", "tags": tags,
        "timeout": "300s"})


def worker(args: argparse.Namespace) -> int:
    """Child process: one read through the source; prints the count as JSON."""
    start = time.perf_counter()
    read = LdapSource(source_config(args.url, args.ca_file, args.worker, args.page_size)).read()
    print(json.dumps({"records": len(read.records), "read_s": time.perf_counter() - start}))
    return 0


TIME = shutil.which("time") or "/usr/bin/time"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall, CPU (user+sys) and peak RSS of one child process.

    CPU comes from os.wait4. Peak RSS does not: a child's ru_maxrss also counts
    the memory image it was forked from (this Python process) before exec, so it
    comes from GNU time's %M, measured on a grandchild forked by that small program.
    """
    use_time = Path(TIME).exists()
    full = [TIME, "-f", "@@rss %M", *cmd] if use_time else cmd
    start = time.perf_counter()
    child = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read the pipes before wait4, or a large output would block the child.
    stdout, stderr = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {stderr.decode(errors='replace')[-800:]}")
    rss_kib = float(usage.ru_maxrss)
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("@@rss "):
            rss_kib = float(line.split()[1])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mib": rss_kib / 1024, "stdout": stdout}


def ldapsearch_cmd(server: Slapd, page_size: int) -> list[str]:
    return ["ldapsearch", "-x", "-LLL", "-H", server.ldaps_url, "-D", SERVICE_DN,
            "-w", SERVICE_PASSWORD, "-b", PEOPLE, "-E", f"pr={page_size}/noprompt",
            FILTER, *ATTRIBUTES, "pwdAccountLockedTime"]


def run(args: argparse.Namespace) -> int:
    users = 10_000 if args.quick and args.users == 100_000 else args.users
    rounds = args.rounds or (3 if args.quick else 5)
    from tests import slapd

    assert (slapd.PEOPLE, slapd.SERVICE_DN, slapd.SERVICE_PASSWORD) == (
        PEOPLE, SERVICE_DN, SERVICE_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        server = slapd.Slapd(directory / "slapd")
        ldif = directory / "users.ldif"
        write_ldif(ldif, users)
        server.slapadd(ldif)
        server.start()
        print(f"{users} users loaded and served in {time.perf_counter() - started:.1f}s; "
              f"{rounds} rounds, page size {args.page_size}, ldaps, same filter and attributes")
        try:
            if args.profile:
                return profile(server, args.profile, args.page_size)
            return compare(server, users, rounds, args)
        finally:
            server.stop()


def compare(server: Slapd, users: int, rounds: int, args: argparse.Namespace) -> int:
    env = {**os.environ, "LDAPTLS_CACERT": str(server.tls.ca_file)}
    clients: dict[str, list[str]] = {"ldapsearch": ldapsearch_cmd(server, args.page_size)}
    for backend in ("python-ldap", "ldap3"):
        clients[backend] = [sys.executable, __file__, "--worker", backend, "--url",
                            server.ldaps_url, "--ca-file", str(server.tls.ca_file),
                            "--page-size", str(args.page_size)]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    for round_no in range(rounds):
        for name, cmd in clients.items():
            result = measure(cmd, env)
            if name == "ldapsearch":
                count = result["stdout"].count(b"\ndn: ") + result["stdout"].startswith(b"dn: ")
            else:
                report = json.loads(result["stdout"])
                count, result["read_s"] = report["records"], report["read_s"]
            if count != users:
                raise RuntimeError(f"{name} read {count} entries, expected {users}")
            results[name].append(result)
            inside = f" (read() {result['read_s']:.2f}s)" if "read_s" in result else ""
            print(f"  round {round_no + 1} {name:11s} wall {result['wall']:6.2f}s "
                  f"cpu {result['cpu']:6.2f}s rss {result['rss_mib']:5.0f} MiB{inside}",
                  flush=True)
    base = {k: statistics.median(r[k] for r in results["ldapsearch"]) for k in ("wall", "cpu")}
    print(f"\nmedians of {rounds} interleaved rounds, {users} users:")
    print(f"{'client':12s} {'wall':>8s} {'cpu':>8s} {'peak RSS':>9s} {'wall x':>7s} {'cpu x':>7s}")
    for name, rows in results.items():
        wall = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        rss = statistics.median(r["rss_mib"] for r in rows)
        print(f"{name:12s} {wall:7.2f}s {cpu:7.2f}s {rss:6.0f} MiB "
              f"{wall / base['wall']:6.1f}x {cpu / base['cpu']:6.1f}x")
    return 0


def profile(server: Slapd, backend: str, page_size: int) -> int:
    source = LdapSource(source_config(server.ldaps_url, str(server.tls.ca_file), backend,
                                      page_size))
    profiler = cProfile.Profile()
    profiler.enable()
    read = source.read()
    profiler.disable()
    print(f"{len(read.records)} records")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 users, 3 rounds")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--profile", choices=["ldap3", "python-ldap"])
    parser.add_argument("--worker", choices=["ldap3", "python-ldap"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return worker(args) if args.worker else run(args)


if __name__ == "__main__":
    sys.exit(main())
