"""The Graph stand-in's sign-in side: token endpoint, managed identity endpoint, assertions."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from cryptography import x509

from standins.jwt import verify_jwt

if TYPE_CHECKING:
    from standins.entra.server import GraphStandin

Reply = tuple[int, dict[str, Any]]


def verify_assertion(assertion: str, certificate_pem: bytes, client_id: str) -> bool:
    """True if `assertion` is a current RS256 or PS256 JWT for `client_id` signed by the
    certificate's key."""
    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    claims = verify_jwt(assertion, key, ("RS256", "PS256"))
    return claims is not None and claims.get("iss") == client_id == claims.get("sub")


def token_reply(standin: GraphStandin, tenant: str, form: dict[str, str]) -> Reply:
    """`POST /{tenant}/oauth2/v2.0/token` (client credentials), Entra's error shapes."""
    identity = standin.identity
    standin.counters["token_requests"] += 1
    if tenant != identity.tenant_id:
        return _oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
    if form.get("client_id") != identity.client_id:
        return _oauth_error(400, "unauthorized_client",
                            "AADSTS700016: Application not found in the directory.")
    if standin.token_refused() or not _client_ok(standin, form):
        standin.counters["token_refused"] += 1
        return _oauth_error(
            401, "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
            "in the request is the client secret value, not the client secret ID.")
    standin.counters["tokens"] += 1
    token = standin.issue_token(form.get("scope", ""))
    return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                 "access_token": token}


def _client_ok(standin: GraphStandin, form: dict[str, str]) -> bool:
    identity = standin.identity
    if "client_secret" in form:
        return identity.client_secret is not None and secrets.compare_digest(
            form["client_secret"], identity.client_secret)
    assertion = form.get("client_assertion")
    if not assertion:
        return False
    if identity.federated_token is not None and secrets.compare_digest(
            assertion, identity.federated_token):
        standin.counters["federated"] += 1
        return True
    ok = any(verify_assertion(assertion, pem, identity.client_id)
             for pem in identity.client_certificates)
    if ok:
        standin.counters["certificate"] += 1
    return ok


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return status, {
        "error": error, "error_description": f"{description}\r\nTrace ID: standin",
        "error_codes": [int(description[6:description.index(":")])],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }


def msi_reply(standin: GraphStandin, query: dict[str, list[str]], header: str | None) -> Reply:
    """App Service style managed identity: `GET /msi/token?resource=...` + X-IDENTITY-HEADER."""
    standin.counters["msi_requests"] += 1
    if header != standin.identity.msi_header:
        return 401, {"statusCode": 401, "message": "Unauthorized"}
    if standin.token_refused():
        standin.counters["token_refused"] += 1
        return 400, {"statusCode": 400, "message": "No managed identity found."}
    resource = (query.get("resource") or [""])[0]
    standin.counters["tokens"] += 1
    return 200, {
        "access_token": standin.issue_token(resource), "token_type": "Bearer",
        "expires_on": str(int(time.time()) + 3600), "resource": resource,
        "client_id": (query.get("client_id") or [""])[0],
    }
