"""A local stand-in for Google's OAuth token endpoint and the Admin SDK Directory API.

Served, as Google documents them: `POST /token` (the service-account JWT
bearer grant, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
with domain-wide delegation: `sub` must be an admin and the scopes must be
the ones delegated), `GET /admin/directory/v1/users` (`customer` or
`domain`, `maxResults` up to 500, `pageToken` / `nextPageToken`) and
`GET /admin/directory/v1/groups/{groupKey}/members` (`includeDerivedMembership`,
`maxResults` up to 200). Errors use Google's JSON error shape. Faults: 429
(with an optional Retry-After), 5xx, 403 rateLimitExceeded, a dropped page,
refused tokens. Plain HTTP by default (google-auth and httplib2 accept it);
`https=True` serves TLS signed by a throwaway CA (`tls.ca_file`).

Run: python -m standins.google --users 100000 --key-file sa.json
"""

from __future__ import annotations

import argparse
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from standins.google.data import Workspace, make_users
from standins.http import JsonHandler, Server, Standin, serve_until_interrupted
from standins.jwt import make_rsa_key, verify_rs256

DELEGATED_SCOPES = frozenset({
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
})
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs service-account assertions for Google's token endpoint,
# whatever the key file's token_uri; Google accepts that audience.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
USERS_PATH = "/admin/directory/v1/users"
GROUPS_PREFIX = "/admin/directory/v1/groups/"
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The service account whose key the stand-in trusts, and its delegation."""

    client_email: str = "syncd-reader@standin-project.iam.gserviceaccount.com"
    client_id: str = "109876543210987654321"
    private_key_id: str = "standinkeyid0001"
    private_key: str = ""  # PEM, as in the key file
    public_key: bytes = b""
    admins: frozenset[str] = frozenset({"admin@example.com"})
    delegated_scopes: frozenset[str] = DELEGATED_SCOPES
    # Without domain-wide delegation (no `sub`), the account itself must hold a
    # Workspace admin role to read the directory.
    admin_role: bool = False

    @classmethod
    def generate(cls, **overrides: Any) -> ServiceAccount:
        private, public = make_rsa_key()
        return cls(private_key=private, public_key=public, **overrides)

    def key_file(self, token_uri: str) -> dict[str, Any]:
        """The JSON key file as the Cloud console downloads it."""
        return {
            "type": "service_account", "project_id": "standin-project",
            "private_key_id": self.private_key_id, "private_key": self.private_key,
            "client_email": self.client_email, "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
            "universe_domain": "googleapis.com",
        }


class GoogleStandin(Standin):
    """The stand-in server; a context manager (`with GoogleStandin(ws, sa) as g:`)."""

    def __init__(self, workspace: Workspace, account: ServiceAccount, *,
                 https: bool = False, tls_dir: Path | None = None) -> None:
        super().__init__(https=https, tls_dir=tls_dir)
        self.workspace = workspace
        self.account = account
        self.subjects: list[str | None] = []
        self._tokens: dict[str, str | None] = {}  # access token -> impersonated subject

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/"

    @property
    def token_uri(self) -> str:
        return f"{self.url}token"

    def key_file(self) -> dict[str, Any]:
        return self.account.key_file(self.token_uri)

    # -- faults ------------------------------------------------------------
    def throttle(self, status: int = 429, retry_after: int | None = 1, times: int = 1,
                 after: int = 0, reason: str | None = None) -> None:
        """Answer `times` API requests with `status`, after letting `after` through."""
        self.faults.add("status", skip=after, times=times, status=status,
                        retry_after=retry_after, reason=reason)

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self.subjects.clear()

    # -- auth --------------------------------------------------------------
    def token_reply(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.counters["tokens"] += 1
        account = self.account
        if self.token_refused():
            self.counters["token_refused"] += 1
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if form.get("grant_type") != JWT_GRANT:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type: "
                         + form.get("grant_type", "")}
        claims = verify_rs256(form.get("assertion", ""), account.public_key)
        if (claims is None or claims.get("iss") != account.client_email
                or claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri)):
            self.counters["token_refused"] += 1
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject = claims.get("sub")
        scopes = set(str(claims.get("scope", "")).split())
        if subject is not None:
            if not scopes or not scopes <= account.delegated_scopes:
                self.counters["token_refused"] += 1
                return 401, {"error": "unauthorized_client", "error_description":
                             "Client is unauthorized to retrieve access tokens using this "
                             "method, or client not authorized for any of the scopes "
                             "requested."}
            if subject not in account.admins and not self.workspace_has(subject):
                self.counters["token_refused"] += 1
                return 400, {"error": "invalid_grant",
                             "error_description": "Invalid email or User ID"}
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self._tokens[token] = subject
            self.subjects.append(subject)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def workspace_has(self, email: str) -> bool:
        return any(u["primaryEmail"] == email for u in self.workspace.users[:1000])

    def caller(self, header: str | None) -> tuple[bool, bool]:
        """(a valid token, allowed to read the directory) for an Authorization header."""
        if not header or not header.startswith("Bearer "):
            return False, False
        with self.lock:
            if header[7:] not in self._tokens:
                return False, False
            subject = self._tokens[header[7:]]
        return True, subject is not None or self.account.admin_role


def google_error(status: int, message: str, reason: str, state: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": "global", "reason": reason}],
                      "status": state}}


_FAULTS = {
    429: ("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' "
          "of service 'admin.googleapis.com'.", "rateLimitExceeded", "RESOURCE_EXHAUSTED"),
    403: ("Rate Limit Exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"),
    500: ("Internal error encountered.", "backendError", "INTERNAL"),
    503: ("The service is currently unavailable.", "backendError", "UNAVAILABLE"),
}


class _Handler(JsonHandler):
    server: Server

    def do_POST(self) -> None:
        standin: GoogleStandin = self.server.standin
        if urlsplit(self.path).path != "/token":
            return self.send_json(404, google_error(404, "Not Found", "notFound", "NOT_FOUND"))
        return self.send_json(*standin.token_reply(self.read_form()))

    def do_GET(self) -> None:
        standin: GoogleStandin = self.server.standin
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        standin.record(parts.path, query)
        valid, allowed = standin.caller(self.headers.get("Authorization"))
        if not valid:
            standin.counters["unauthorized"] += 1
            return self.send_json(401, google_error(
                401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "authError", "UNAUTHENTICATED"))
        if not allowed:
            standin.counters["forbidden"] += 1
            return self.send_json(403, google_error(
                403, "Not Authorized to access this resource/api", "forbidden",
                "PERMISSION_DENIED"))
        fault = standin.next_fault()
        if fault is not None:
            return self.answer_fault(fault)
        if parts.path == USERS_PATH:
            return self._users(query)
        if parts.path.startswith(GROUPS_PREFIX) and parts.path.endswith("/members"):
            key = unquote(parts.path[len(GROUPS_PREFIX):-len("/members")])
            return self._members(key, query)
        return self.send_json(404, google_error(404, "Not Found", "notFound", "NOT_FOUND"))

    def send_fault(self, fault: dict[str, Any]) -> None:
        status = fault["status"]
        message, reason, state = _FAULTS.get(status, _FAULTS[500])
        headers = ([("Retry-After", str(fault["retry_after"]))]
                   if fault["retry_after"] is not None else [])
        return self.send_json(status, google_error(status, message, fault["reason"] or reason,
                                                   state), headers)

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], cap: int,
              kind: str, field: str) -> None:
        standin: GoogleStandin = self.server.standin
        try:
            size = int(query.get("maxResults", "100"))
            start = int(query.get("pageToken") or 0)
        except ValueError:
            return self.send_json(400, google_error(400, "Invalid Input", "invalid",
                                                    "INVALID_ARGUMENT"))
        if not 1 <= size <= cap:
            return self.send_json(400, google_error(
                400, f"Invalid value '{size}'. Values must be within the range: [1, {cap}]",
                "invalid", "INVALID_ARGUMENT"))
        body: dict[str, Any] = {"kind": kind, "etag": '"standin"',
                                field: items[start:start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        standin.counters["pages"] += 1
        return self.send_body(200, _encode(body))

    def _users(self, query: dict[str, str]) -> None:
        standin: GoogleStandin = self.server.standin
        workspace = standin.workspace
        if "customer" not in query and "domain" not in query:
            return self.send_json(400, google_error(400, "Bad Request", "badRequest",
                                                    "INVALID_ARGUMENT"))
        if query.get("customer") not in (None, "my_customer", "C01standin") or query.get(
                "domain") not in (None, workspace.domain):
            return self.send_json(403, google_error(
                403, "Not Authorized to access this resource/api", "forbidden",
                "PERMISSION_DENIED"))
        return self._page(workspace.users, query, 500, "admin#directory#users", "users")

    def _members(self, key: str, query: dict[str, str]) -> None:
        standin: GoogleStandin = self.server.standin
        group = standin.workspace.group(key)
        if group is None:
            return self.send_json(404, google_error(404, "Resource Not Found: groupKey",
                                                    "notFound", "NOT_FOUND"))
        derived = query.get("includeDerivedMembership") == "true"
        members = standin.workspace.members(group, derived)
        return self._page(members, query, 200, "admin#directory#members", "members")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--key-file", type=Path, required=True,
                        help="where to write the service-account key file for clients")
    args = parser.parse_args(argv)
    account = ServiceAccount.generate()
    with GoogleStandin(Workspace(make_users(args.users)), account) as standin:
        args.key_file.write_text(json.dumps(standin.key_file()), encoding="utf-8")
        serve_until_interrupted({"url": standin.url, "token_uri": standin.token_uri,
                                 "key_file": str(args.key_file), "subject": "admin@example.com"})


if __name__ == "__main__":
    main()


GoogleStandin.handler = _Handler
