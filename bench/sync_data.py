"""The synthetic directory the sync benchmarks read: people, the LDIF and CSV they
are loaded from, the Nebuly roster a scenario starts with, and the syncd config.

Used by bench_sync.py and bench_startup.py; nothing here times anything.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

API_KEY = "bench-key-not-secret"
BATCH = 500
CHANGE_SHARE = 0.01  # 1% new, 1% changed, 1% departed
OLD_DATE = "2025-01-01"

PEOPLE = "ou=people,dc=corp,dc=example"
SERVICE_DN = "cn=syncd,ou=service,dc=corp,dc=example"
SERVICE_PASSWORD = "service-password"  # the throwaway server's account (tests/slapd.py)
FILTER = "(&(objectClass=inetOrgPerson)(!(pwdAccountLockedTime=*)))"  # what our source sends
# What the source requests for the templates below (+ the ppolicy lock attribute).
LDAP_ATTRIBUTES = ["departmentNumber", "l", "mail", "title", "pwdAccountLockedTime"]
CITIES = ["Paris", "Berlin", "Austin", "Tokyo", "Milan", "Sydney", "Toronto", "Madrid"]
TITLES = ["Analyst", "Engineer", "Manager", "Director", "Designer", "Sales", "Support"]


# --- synthetic people -------------------------------------------------------------------


def person(i: int) -> dict[str, str]:
    """Directory attributes of person i (deterministic)."""
    uid = f"user{i:07d}"
    return {"uid": uid, "mail": f"{uid}@corp.example", "department": f"D{i % 40:02d}",
            "city": CITIES[i % len(CITIES)], "title": TITLES[i % len(TITLES)]}


def tags_of(p: dict[str, str]) -> dict[str, str]:
    # What the config maps; see write_config.
    return {"department": p["department"], "region": p["city"], "role": p["title"].lower()}


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("uid,email,department,city,title\n")
        for i in range(n):
            p = person(i)
            out.write(f"{p['uid']},{p['mail']},{p['department']},{p['city']},{p['title']}\n")


def write_ldif(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            p = person(i)
            uid = p["uid"]
            out.write(
                f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
                f"sn: {uid}\nmail: {p['mail']}\ndepartmentNumber: {p['department']}\n"
                f"l: {p['city']}\ntitle: {p['title']}\n\n")


def roster_counts(n: int, scenario: str) -> dict[str, int]:
    k = int(n * CHANGE_SHARE) if scenario == "changes" else 0
    return {"insert": k, "update": k, "deactivate": k}


def write_roster(path: Path, n: int, scenario: str) -> dict[str, int]:
    """Nebuly's roster before the run, as the PUT /_standin/users body.

    changes: people 0..k-1 are missing (inserts), k..2k-1 have a stale department
    (updates), and k people not in the directory are active (deactivations).
    """
    counts = roster_counts(n, scenario)
    k = counts["insert"]
    with path.open("w", encoding="utf-8") as out:
        out.write('{"users":[')
        first = True
        for i in range(k, n):
            p = person(i)
            tags = tags_of(p)
            if i < 2 * k:
                tags["department"] = "Stale"
            record = {"end_user": p["mail"], "tags": tags, "active_from": OLD_DATE,
                      "active_to": None}
            out.write(("" if first else ",") + json.dumps(record, separators=(",", ":")))
            first = False
        for j in range(k):
            record = {"end_user": f"left{j:07d}@corp.example",
                      "tags": {"department": "D00", "region": "Paris", "role": "analyst"},
                      "active_from": OLD_DATE, "active_to": None}
            out.write(("" if first else ",") + json.dumps(record, separators=(",", ":")))
            first = False
        out.write("]}")
    return counts


def minimum_write_calls(counts: dict[str, int]) -> int:
    """Insert is one verb; update, deactivate and reactivate share the update verb."""
    return (math.ceil(counts["insert"] / BATCH)
            + math.ceil((counts["update"] + counts["deactivate"]) / BATCH))


def minimum_per_kind(counts: dict[str, int]) -> int:
    return sum(math.ceil(v / BATCH) for v in counts.values())


# --- config -----------------------------------------------------------------------------


def write_config(path: Path, source: str, nebuly_url: str, data: dict[str, str],
                 ldap_config: str = "tuned", transport: str = "ldaps") -> None:
    """`ldap_config`: "default" leaves page_size, backend and timeout to syncd's defaults
    (what an admin who sets only the connection gets); "tuned" pins page size 1000."""
    if source == "csv":
        src = (f"  - name: hr\n    type: csv\n    path: {data['csv']}\n"
               '    end_user: "{email}"\n    tags:\n      department: "{department}"\n'
               '      region: "{city}"\n      role:\n        template: "{title}"\n'
               "        transform: lower\n")
    else:
        connection = (f"    url: {data['ldap_url']}\n    allow_plaintext: true\n"
                      if transport == "plain" else
                      f"    url: {data['ldaps_url']}\n    ca_file: {data['ca_file']}\n")
        tuning = ("" if ldap_config == "default" else
                  "    backend: auto\n    page_size: 1000\n    timeout: 600s\n")
        src = (f"  - name: dir\n    type: ldap\n{connection}    bind_dn: \"{SERVICE_DN}\"\n"
               f"    bind_password: {SERVICE_PASSWORD}\n    base_dn: \"{PEOPLE}\"\n"
               f"{tuning}"
               '    end_user: "{mail}"\n    tags:\n      department: "{departmentNumber}"\n'
               '      region: "{l}"\n      role:\n        template: "{title}"\n'
               "        transform: lower\n")
    path.write_text(
        f"nebuly:\n  base_url: {nebuly_url}\n  api: platform-users\n  api_key: {API_KEY}\n"
        f"  batch_size: {BATCH}\n  timeout: 600s\n"
        f"sources:\n{src}"
        'policy:\n  mode: sync\n  max_deactivations: "5%"\nlogging:\n  format: json\n')


def build_data(work: Path, n: int, sources: list[str]) -> tuple[dict[str, str], Any]:
    data: dict[str, str] = {}
    server = None
    if "csv" in sources:
        started = time.perf_counter()
        data["csv"] = str(work / "roster.csv")
        write_csv(Path(data["csv"]), n)
        print(f"  csv: {n} rows written in {time.perf_counter() - started:.1f}s", flush=True)
    if "ldap" in sources:
        from tests.slapd import Slapd

        started = time.perf_counter()
        server = Slapd(work / "slapd", sizelimit=None)
        ldif = work / "users.ldif"
        write_ldif(ldif, n)
        server.slapadd(ldif)
        ldif.unlink()
        server.start()
        data |= {"ldaps_url": server.ldaps_url, "ldap_url": server.ldap_url,
                 "ca_file": str(server.tls.ca_file)}
        print(f"  slapd: {n} users generated, slapadd-ed and served in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
    return data, server
