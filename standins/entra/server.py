"""A local stand-in for Entra ID sign-in and Microsoft Graph (tests and benchmark).

Two listeners share one handler: HTTPS on 127.0.0.1 (azure-identity refuses an
http:// authority; a throwaway CA signs the cert) and plain HTTP on 127.0.0.1
(kiota sends tokens over http only to loopback, which is what this is).

Served: `/{tenant}/oauth2/v2.0/token` (client secret, certificate assertion,
federated token), `/{tenant}/v2.0/.well-known/openid-configuration`, an App
Service style managed identity endpoint `/msi/token`, and Graph
`/v1.0/users`, `/v1.0/groups/{id}/{transitiveMembers|members}/microsoft.graph.user`,
`/v1.0/servicePrincipals` (`$filter` on appId or id), `.../{id}/appRoleAssignedTo` and
`POST /v1.0/directoryObjects/getByIds` (see apps.py), with `$select`, `$filter` (eq
clauses joined by `and`), `$top`, `@odata.nextLink`.
Faults (throttling, 503, dropped page, token failure) are injected through
methods; `counters` and `seen` record what clients did.

Run: python -m standins.entra.server --users 100000
"""

from __future__ import annotations

import argparse
import json
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from standins.entra.apps import Rows, collection, users_by_ids
from standins.entra.auth import msi_reply, token_reply
from standins.entra.data import (
    Directory,
    PageCache,
    QueryError,
    make_users,
    page_index,
    parse_top,
    query_string,
)
from standins.entra.tls import server_context
from standins.http import JsonHandler, Server, Standin, serve_until_interrupted

TENANT_ID = "00000000-0000-0000-0000-000000000000"
CLIENT_ID = "11111111-1111-1111-1111-111111111111"
MSI_PATH = "/msi/token"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the token endpoints accept."""

    tenant_id: str = TENANT_ID
    client_id: str = CLIENT_ID
    client_secret: str | None = "standin-client-secret"  # noqa: S105 (a test stand-in)
    # Certificates uploaded to the app registration (PEM); assertions signed by any pass.
    client_certificates: tuple[bytes, ...] = ()
    federated_token: str | None = None  # the workload identity token file's content
    msi_header: str = "standin-identity-header"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class GraphStandin(Standin):
    """The stand-in server; a context manager (`with GraphStandin(...) as s:`)."""

    def __init__(self, directory: Directory, identity: Identity | None = None,
                 tls_dir: Path | None = None) -> None:
        super().__init__(https=True, tls_dir=tls_dir)
        self.seen: list[SeenRequest] = []  # with headers, not the base's (path, query)
        self.directory = directory
        self.identity = identity or Identity()
        self.cache = PageCache()
        self.token_scopes: list[str] = []
        self._tokens: set[str] = set()

    def record(self, path: str, query: dict[str, str],
               headers: dict[str, str] | None = None) -> None:
        self.counters["graph"] += 1
        with self.lock:
            self.seen.append(SeenRequest(path, query, headers or {}))

    def listeners(self) -> list[ssl.SSLContext | None]:
        """Plain HTTP first (kiota sends tokens over http to loopback), then HTTPS."""
        assert self.tls is not None
        return [None, server_context(self.tls)]

    @property
    def graph_url(self) -> str:
        """Plain-HTTP Graph endpoint on loopback (fast; kiota allows http there)."""
        return f"http://127.0.0.1:{self.port_of(0)}/v1.0"

    @property
    def graph_https_url(self) -> str:
        return f"{self.authority}/v1.0"

    @property
    def authority(self) -> str:
        return f"https://localhost:{self.port_of(1)}"

    @property
    def msi_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port_of(0)}{MSI_PATH}"

    # -- faults and tokens -------------------------------------------------
    def throttle(self, status: int = 429, retry_after: int | None = 1, times: int = 1,
                 after: int = 0) -> None:
        """Answer `times` Graph requests with `status`, after letting `after` through."""
        self.faults.add("status", skip=after, times=times, status=status,
                        retry_after=retry_after)

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self.token_scopes.clear()

    def issue_token(self, scope: str) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens.add(token)
            self.token_scopes.append(scope)
        return token

    def valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self.lock:
            return authorization[7:] in self._tokens


class _Handler(JsonHandler):
    content_type = "application/json; charset=utf-8"
    server: Server

    def _graph_error(self, status: int, code: str, message: str,
                     headers: list[tuple[str, str]] | None = None) -> None:
        self.send_json(status, {"error": {"code": code, "message": message}}, headers)

    # -- routes ------------------------------------------------------------
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path == MSI_PATH:
            return self.send_json(*msi_reply(self.server.standin, parse_qs(parts.query),
                                             self.headers.get("X-IDENTITY-HEADER")))
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            tenant = path.split("/")[1]
            base = f"{self.base_url()}/{tenant}"
            return self.send_json(200, {
                "issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys", "tenant_region_scope": "EU",
                "response_types_supported": ["code", "id_token"],
            })
        if not path.startswith("/v1.0/"):
            return self._graph_error(404, "NotFound", f"no route {path}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not self._gate(path, query):
            return None
        try:
            self._collection(path, query)
        except QueryError as exc:
            self._graph_error(exc.status, exc.code, exc.message)
        return None

    def _gate(self, path: str, query: dict[str, str]) -> bool:
        """Record the request, check the token, apply an injected fault; False = answered."""
        standin = self.server.standin
        standin.record(path, query, {k.lower(): v for k, v in self.headers.items()})
        if not standin.valid(self.headers.get("Authorization")):
            standin.counters["unauthorized"] += 1
            self._graph_error(401, "InvalidAuthenticationToken",
                              "Access token is empty or invalid.")
            return False
        fault = standin.next_fault()
        if fault is not None:
            self.answer_fault(fault)
            return False
        return True

    def send_fault(self, fault: dict[str, Any]) -> None:
        retry_after = fault["retry_after"]
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        code = "TooManyRequests" if fault["status"] == 429 else "ServiceUnavailable"
        self._graph_error(fault["status"], code, "Injected fault.", extra)

    def _collection(self, path: str, query: dict[str, str]) -> None:
        standin = self.server.standin
        rows = collection(standin.directory, path.split("/")[2:], query)  # after "", "v1.0"
        self._page(path, query, rows)

    def _page(self, path: str, query: dict[str, str], rows: Rows, key_extra: str = "") -> None:
        standin = self.server.standin
        top = parse_top(query.get("$top"))
        index = page_index(query.get("$skiptoken"))
        kept = [(k, v) for k, v in query.items() if k != "$skiptoken"]
        next_url = f"{self.next_link_base()}{path}?{query_string(kept)}"
        body = standin.cache.page((next_url, key_extra), index, rows.rows, select=rows.select,
                                  filters=rows.filters, top=top, next_url=next_url,
                                  context=f"{self.base_url()}/v1.0/$metadata#{rows.context}")
        if body is None:
            raise QueryError("Request_BadRequest", "Invalid skip token.")
        standin.counters["pages"] += 1
        self.send_body(200, body)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if path == "/v1.0/directoryObjects/getByIds":
            return self._get_by_ids(dict(parse_qsl(parts.query, keep_blank_values=True)), raw)
        form = dict(parse_qsl(raw.decode()))
        if not path.endswith("/oauth2/v2.0/token"):
            return self.send_json(404, {"error": "not_found"})
        return self.send_json(*token_reply(self.server.standin, path.split("/")[1], form))


    def _get_by_ids(self, query: dict[str, str], raw: bytes) -> None:
        standin = self.server.standin
        if not self._gate("/v1.0/directoryObjects/getByIds", query):
            return
        try:
            body = json.loads(raw or b"{}")
            rows = users_by_ids(standin.directory, body, query.get("$select"))
        except (ValueError, QueryError) as exc:
            code = getattr(exc, "code", "BadRequest")
            return self._graph_error(getattr(exc, "status", 400), code, str(exc))
        standin.counters["get_by_ids"] += 1
        standin.counters["pages"] += 1
        context = f"{self.base_url()}/v1.0/$metadata#directoryObjects"
        self.send_json(200, {"@odata.context": context, "value": rows})
        return None


@contextmanager
def running(users: int = 1000, **kwargs: Any) -> Iterator[GraphStandin]:
    """A stand-in with `users` generated users, started and stopped around the block."""
    with GraphStandin(Directory(make_users(users)), **kwargs) as standin:
        yield standin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--tls-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    identity = Identity()
    with GraphStandin(Directory(make_users(args.users)), identity, args.tls_dir) as standin:
        assert standin.tls is not None
        serve_until_interrupted({
            "graph_url": standin.graph_url, "graph_https_url": standin.graph_https_url,
            "authority": standin.authority, "ca_file": str(standin.tls.ca_file),
            "tenant_id": identity.tenant_id, "client_id": identity.client_id,
            "client_secret": identity.client_secret, "msi_endpoint": standin.msi_endpoint,
            "msi_header": identity.msi_header,
        })


if __name__ == "__main__":
    main()


GraphStandin.handler = _Handler
