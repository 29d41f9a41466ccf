"""A local stand-in for Okta's management API (tests and benchmark), over HTTPS.

Served, as Okta documents them: `GET /api/v1/users`, `/api/v1/groups/{id}/users`,
`/api/v1/apps/{id}/users` (`expand=user`), with `limit` and an `after` cursor,
`Link: <...>; rel="self"` and `rel="next"` headers, and X-Rate-Limit-Limit /
-Remaining / -Reset on every answer; `POST /oauth2/v1/token` (client
credentials with a private_key_jwt client assertion). Auth: `SSWS <token>` or
`Bearer <access token>`. Faults: 429 with the rate-limit headers, 5xx, a
dropped page, refused tokens. The okta SDK insists on https: a throwaway CA
(`tls.ca_file`) signs the server's certificate.

Run: python -m standins.okta --users 100000
"""

from __future__ import annotations

import argparse
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec

from standins.http import JsonHandler, Server, Standin, serve_until_interrupted
from standins.jwt import verify_rs256
from standins.okta.data import App, Org, make_users

RATE_LIMIT = 600
PAGE_CAPS = {"users": 200, "apps": 500, "groups": 1000}
GRANTABLE = frozenset({"okta.users.read", "okta.groups.read", "okta.apps.read"})
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class OktaIdentity:
    """What the stand-in accepts: an API token and/or a service app's public key."""

    api_token: str = "00standin-api-token"  # noqa: S105 (a test stand-in)
    client_id: str = "0oastandinservice"
    public_key: bytes | None = None  # PEM; private_key_jwt assertions signed by it pass
    granted_scopes: frozenset[str] = GRANTABLE


class OktaStandin(Standin):
    """The stand-in server; a context manager (`with OktaStandin(org) as okta:`)."""

    def __init__(self, org: Org, identity: OktaIdentity | None = None,
                 tls_dir: Path | None = None, cache_users: bool = False) -> None:
        super().__init__(https=True, tls_dir=tls_dir)
        self.cache_users = cache_users
        self.org = org
        self.identity = identity or OktaIdentity()
        self._tokens: set[str] = set()
        self._revoked = False
        self._encoded: dict[int, bytes] = {}

    @property
    def ca_file(self) -> Path:
        assert self.tls is not None
        return self.tls.ca_file

    @property
    def org_url(self) -> str:
        return f"https://localhost:{self.port}"

    def encode(self, items: list[dict[str, Any]], stable: bool) -> bytes:
        """A page as JSON. With `cache_users` (the benchmark's frozen org), users
        are encoded once and kept: a 100,000-user read is otherwise mostly the
        stand-in encoding. `stable`: the items are the org's own user objects
        (not app users built for this answer), so their id() is a valid key."""
        if not (self.cache_users and stable):
            return _encode(items)
        parts = []
        for item in items:
            body = self._encoded.get(id(item))
            if body is None:
                body = self._encoded[id(item)] = _encode(item)
            parts.append(body)
        return b"[" + b",".join(parts) + b"]"

    # -- faults ------------------------------------------------------------
    def throttle(self, status: int = 429, reset_in: int = 0, times: int = 1,
                 after: int = 0, headers: bool = True) -> None:
        """Answer `times` API requests with `status`, after letting `after` through.

        X-Rate-Limit-Reset is `reset_in` seconds after the Date header (the okta
        SDK waits reset - date + 1 s); `headers=False` leaves the rate-limit
        headers out.
        """
        self.faults.add("status", skip=after, times=times, status=status, reset_in=reset_in,
                        headers=headers)

    def revoke_api_token(self, revoked: bool = True) -> None:
        """The API token stops working (an admin revoked it, or it expired unused)."""
        with self.lock:
            self._revoked = revoked

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self._revoked = False

    # -- auth --------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        with self.lock:
            if scheme == "SSWS":
                return not self._revoked and secrets.compare_digest(value,
                                                                    self.identity.api_token)
            return scheme == "Bearer" and value in self._tokens

    def token_reply(self, form: dict[str, str], org_url: str) -> tuple[int, dict[str, Any]]:
        self.counters["tokens"] += 1
        if self.token_refused():
            self.counters["token_refused"] += 1
            return 401, {"error": "invalid_client",
                         "error_description": "The client_assertion token is invalid."}
        identity = self.identity
        if (form.get("grant_type") != "client_credentials"
                or form.get("client_assertion_type")
                != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return 400, {"error": "invalid_request",
                         "error_description": "The request is missing a required parameter."}
        claims = (verify_rs256(form.get("client_assertion", ""), identity.public_key)
                  if identity.public_key else None)
        if (claims is None or claims.get("iss") != identity.client_id
                or claims.get("sub") != identity.client_id
                or claims.get("aud") != f"{org_url}/oauth2/v1/token"):
            self.counters["token_refused"] += 1
            return 401, {"error": "invalid_client",
                         "error_description": "The client_assertion signature is invalid."}
        wanted = set(form.get("scope", "").split())
        if not wanted or not wanted <= identity.granted_scopes:
            self.counters["token_refused"] += 1
            return 400, {"error": "invalid_scope", "error_description":
                         "The following scopes are not allowed: "
                         + " ".join(sorted(wanted - identity.granted_scopes))}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token,
                     "scope": " ".join(sorted(wanted))}


class _Handler(JsonHandler):
    server: Server

    def _limit_headers(self, remaining: int, reset_in: int = 60) -> list[tuple[str, str]]:
        return [("X-Rate-Limit-Limit", str(RATE_LIMIT)),
                ("X-Rate-Limit-Remaining", str(remaining)),
                ("X-Rate-Limit-Reset", str(int(time.time()) + reset_in))]

    def _error(self, status: int, code: str, summary: str,
               headers: list[tuple[str, str]] | None = None) -> None:
        self.send_json(status, {"errorCode": code, "errorSummary": summary, "errorLink": code,
                                "errorId": "oae" + secrets.token_hex(8), "errorCauses": []},
                       headers)

    def do_POST(self) -> None:
        standin: OktaStandin = self.server.standin
        if urlsplit(self.path).path != "/oauth2/v1/token":
            return self._error(404, "E0000022", "The endpoint does not support the provided "
                               "HTTP method")
        return self.send_json(*standin.token_reply(self.read_form(), self.base_url()))

    def do_GET(self) -> None:
        standin: OktaStandin = self.server.standin
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        standin.record(parts.path, query)
        if not standin.authorized(self.headers.get("Authorization")):
            standin.counters["unauthorized"] += 1
            return self._error(401, "E0000011", "Invalid token provided",
                               self._limit_headers(RATE_LIMIT - 1))
        fault = standin.next_fault()
        if fault is not None:
            return self.answer_fault(fault)
        self._collection(parts.path, query)
        return None

    def send_fault(self, fault: dict[str, Any]) -> None:
        status = fault["status"]
        headers = self._limit_headers(0, fault["reset_in"]) if fault["headers"] else []
        if status == 429:
            return self._error(429, "E0000047", "API call exceeded rate limit due to too "
                               "many requests.", headers)
        return self._error(status, "E0000009", "Internal Server Error", headers)

    def _collection(self, path: str, query: dict[str, str]) -> None:
        standin: OktaStandin = self.server.standin
        org = standin.org
        segments = path.strip("/").split("/")  # api v1 ...
        if segments[:2] != ["api", "v1"]:
            return self._error(404, "E0000022", f"Not found: {path}")
        rest = segments[2:]
        if rest == ["users"]:
            items, cap = org.listed_users(), PAGE_CAPS["users"]
        elif len(rest) == 3 and rest[0] == "groups" and rest[2] == "users":
            if rest[1] not in org.groups:
                return self._error(404, "E0000007", f"Not found: Resource not found: {rest[1]} "
                                   "(UserGroup)")
            items, cap = org.group_users(rest[1]), PAGE_CAPS["groups"]
        elif len(rest) == 3 and rest[0] == "apps" and rest[2] == "users":
            if rest[1] not in org.apps:
                return self._error(404, "E0000007", f"Not found: Resource not found: {rest[1]} "
                                   "(AppInstance)")
            items = org.app_users(rest[1], query.get("expand") == "user")
            cap = PAGE_CAPS["apps"]
        else:
            return self._error(404, "E0000022", f"Not found: {path}")
        try:
            limit = min(int(query.get("limit", cap)), cap)
            start = int(query.get("after", "0") or 0)
        except ValueError:
            return self._error(400, "E0000001", "Api validation failed: limit")
        page = items[start:start + limit]
        base = f"{self.base_url()}{path}"
        kept = {k: v for k, v in query.items() if k != "after"}
        headers = [("Link", f'<{base}?{urlencode(kept)}>; rel="self"')]
        if start + limit < len(items):
            after = urlencode({**kept, "after": str(start + limit)})
            headers.append(("Link", f'<{self.next_link_base()}{path}?{after}>; rel="next"'))
        standin.counters["pages"] += 1
        body = standin.encode(page, stable=rest[0] != "apps")
        self.send_body(200, body, headers + self._limit_headers(RATE_LIMIT - 1))
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--tls-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    users = make_users(args.users)
    org = Org(users, {"00gall": [u["id"] for u in users]},
              {"0oaagent": App(groups=["00gall"])})
    with OktaStandin(org, tls_dir=args.tls_dir, cache_users=True) as standin:
        serve_until_interrupted({"org_url": standin.org_url, "ca_file": str(standin.ca_file),
                                 "api_token": standin.identity.api_token, "app": "0oaagent",
                                 "group": "00gall"})


if __name__ == "__main__":
    main()


OktaStandin.handler = _Handler
