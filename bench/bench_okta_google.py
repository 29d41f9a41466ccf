"""Benchmark: the Okta and Google sources vs plain httpx pagers doing the same job.

Each stand-in serves N users in its own process. Readers, each in its own
subprocess (so peak RSS, ru_maxrss, is its own), interleaved over several
repetitions, medians reported; each child reads twice: "cold" includes the
first import of the libraries, "warm" is a later read in the same process.

  okta            OktaSource: okta SDK auth/retries, raw JSON pages (what syncd runs)
  okta-models     the okta SDK's typed API (okta.client, paginate_all over
                  list_users -> User models), then the same records
  okta-plain      httpx + json, Link rel="next", the same records
  google          GoogleSource: google-api-python-client + google-auth
  google-plain    httpx + json (a hand-signed JWT bearer grant), nextPageToken,
                  the same records

    .venv/bin/python bench/bench_okta_google.py --users 100000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.children import child, run_child

ROOT = Path(__file__).resolve().parents[1]
OKTA_TAGS = {"department": "{profile.department}", "region": "{profile.countryCode}"}
GOOGLE_TAGS = {"department": "{organizations.0.department}", "unit": "{orgUnitPath}"}
ELIGIBLE = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"})
# What the sources take from each user: their templates' paths and the id/origin.
OKTA_PATHS = ["id", "status", "profile.login", "profile.email", "profile.department",
              "profile.countryCode"]
GOOGLE_PATHS = ["id", "primaryEmail", "organizations.0.department", "orgUnitPath"]


# -- Okta readers --------------------------------------------------------------
def okta_source(args: argparse.Namespace) -> int:
    from syncd.sources.okta.config import OktaSourceConfig
    from syncd.sources.okta.source import OktaSource

    config = OktaSourceConfig.model_validate({
        "name": "okta", "type": "okta", "org_url": args.org_url, "api_token": args.token,
        "ca_file": args.ca_file, "end_user": "{profile.email}", "tags": OKTA_TAGS,
        "page_size": 200})
    return len(OktaSource(config).read().records)


def okta_models(args: argparse.Namespace) -> int:
    import ssl

    import aiohttp
    from okta.client import Client
    from okta.pagination import paginate_all

    from syncd.sources.base import SourceRecord
    from syncd.sources.paths import path_tree, pick

    async def read() -> int:
        # okta 3.4.6's typed methods send "SSWS" + token with no space between
        # (Configuration.auth_settings); a leading space makes the header right.
        client = Client({"orgUrl": args.org_url, "token": " " + args.token})
        context = ssl.create_default_context(cafile=args.ca_file)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            client.get_request_executor().set_session(session)
            records = []
            paths = path_tree(OKTA_PATHS)
            async for user in paginate_all(client.list_users, limit=200):
                # to_dict() leaves read-only fields (id, status...) out: add them back.
                data = user.to_dict() | {"id": user.id, "status": str(user.status.value)}
                if data["status"] in ELIGIBLE:
                    records.append(SourceRecord(pick(data, paths), user.id))
        return len(records)

    return asyncio.run(read())


def okta_plain(args: argparse.Namespace) -> int:
    import ssl

    import httpx

    from syncd.sources.base import SourceRecord
    from syncd.sources.paths import path_tree, pick

    records = []
    paths = path_tree(OKTA_PATHS)
    verify = ssl.create_default_context(cafile=args.ca_file)
    with httpx.Client(verify=verify, timeout=60,
                      headers={"Authorization": f"SSWS {args.token}"}) as client:
        url: str | None = f"{args.org_url}/api/v1/users?limit=200"
        while url:
            response = client.get(url).raise_for_status()
            for user in json.loads(response.content):
                if user.get("status") in ELIGIBLE:
                    records.append(SourceRecord(pick(user, paths), user["id"]))
            url = response.links.get("next", {}).get("url")
    return len(records)


# -- Google readers ------------------------------------------------------------
def google_source(args: argparse.Namespace) -> int:
    from syncd.sources.google.config import GoogleSourceConfig
    from syncd.sources.google.source import GoogleSource

    config = GoogleSourceConfig.model_validate({
        "name": "google", "type": "google", "credentials_file": args.key_file,
        "subject": args.subject, "api_endpoint": args.google_url,
        "end_user": "{primaryEmail}", "tags": GOOGLE_TAGS})
    return len(GoogleSource(config).read().records)


def google_plain(args: argparse.Namespace) -> int:
    import base64

    import httpx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from syncd.sources.base import SourceRecord
    from syncd.sources.paths import path_tree, pick

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    info = json.loads(Path(args.key_file).read_text())
    now = int(time.time())
    claims = {"iss": info["client_email"], "sub": args.subject, "aud": info["token_uri"],
              "scope": "https://www.googleapis.com/auth/admin.directory.user.readonly",
              "iat": now, "exp": now + 3600}
    signing = (b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "."
               + b64(json.dumps(claims).encode()))
    key = serialization.load_pem_private_key(info["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    records = []
    paths = path_tree(GOOGLE_PATHS)
    with httpx.Client(timeout=60) as client:
        token = client.post(info["token_uri"], data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": f"{signing}.{b64(signature)}"}).raise_for_status().json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        params = {"customer": "my_customer", "maxResults": "500"}
        while True:
            page = json.loads(client.get(f"{args.google_url}admin/directory/v1/users",
                                         params=params, headers=headers)
                              .raise_for_status().content)
            for user in page.get("users", []):
                if not user.get("suspended") and not user.get("archived"):
                    records.append(SourceRecord(pick(user, paths), user["id"]))
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
    return len(records)


READERS = {"okta": okta_source, "okta-models": okta_models, "okta-plain": okta_plain,
           "google": google_source, "google-plain": google_plain}
LABELS = {"okta": "OktaSource (okta SDK, raw pages)",
          "okta-models": "okta SDK typed API (User models)",
          "okta-plain": "plain httpx + json + records",
          "google": "GoogleSource (googleapiclient)",
          "google-plain": "plain httpx + json + records"}
RATIOS = [("okta", "okta-plain"), ("okta-models", "okta-plain"), ("okta-models", "okta"),
          ("google", "google-plain")]


def start(module: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A stand-in in its own process (children would inherit the parent's peak RSS)."""
    server = subprocess.Popen([sys.executable, "-m", module, *extra], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())


def parent(args: argparse.Namespace) -> None:
    import signal

    # A terminated benchmark still stops its stand-ins (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    users = str(args.users)
    names = [n for n in READERS if not args.only or n in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        okta, okta_info = start("standins.okta", "--users", users)
        google, google_info = start("standins.google", "--users", users, "--key-file",
                                    str(Path(tmp) / "sa.json"))
        try:
            common = ["--org-url", okta_info["org_url"], "--ca-file", okta_info["ca_file"],
                      "--token", okta_info["api_token"], "--google-url", google_info["url"],
                      "--key-file", google_info["key_file"], "--subject",
                      google_info["subject"]]
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for rep in range(args.reps):
                order = names if rep % 2 == 0 else list(reversed(names))
                for name in order:  # interleaved: machine noise hits every reader alike
                    result = run_child(__file__, name, common, timeout=3600, cwd=str(ROOT))
                    results[name].append(result)
                    print(f"rep {rep + 1} {name:12s} cold {result['cold']:6.2f}s "
                          f"warm {result['warm']:6.2f}s rss {result['rss_mib']:6.1f} MiB "
                          f"users {result['users']}", flush=True)
        finally:
            for server in (okta, google):
                server.terminate()
                server.wait(timeout=30)
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]]) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"\n{args.users} users in each stand-in, {args.reps} interleaved repetitions, "
          "medians:")
    print(f"{'reader':14s} {'':34s} {'cold s':>7s} {'warm s':>7s} {'peak RSS MiB':>13s}")
    for name in results:
        print(f"{name:14s} {LABELS[name]:34s} {median(name, 'cold'):7.2f} "
              f"{median(name, 'warm'):7.2f} {median(name, 'rss_mib'):13.1f}")
    for top, base in RATIOS:
        if top in results and base in results:
            ratios = "  ".join(f"{key} {median(top, key) / median(base, key):5.2f}x"
                               for key in ("cold", "warm", "rss_mib"))
            print(f"{top:>12s} / {base:12s} {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(READERS))
    parser.add_argument("--child", choices=list(READERS))
    for name in ("--org-url", "--ca-file", "--token", "--google-url", "--key-file",
                 "--subject"):
        parser.add_argument(name)
    args = parser.parse_args()
    if args.child:
        child(lambda: READERS[args.child](args))
    else:
        parent(args)


if __name__ == "__main__":
    main()
