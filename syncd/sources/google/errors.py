"""Any failure of a Google read -> one admin-readable SourceError line, without secrets."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Sequence
from typing import Any

from syncd.sources.base import SourceError
from syncd.sources.common import scrub, tls_hint
from syncd.sources.google.config import SCOPES, GoogleSourceConfig
from syncd.sources.google.directory import RetriesExhausted, error_reason
from syncd.sources.throttle import BudgetExceeded

DELEGATION_HINT = (
    "in the Admin console (Security > Access and data control > API controls > Manage "
    "domain-wide delegation) add the service account's client id with the scopes "
    + ",".join(SCOPES))


def translate(exc: BaseException, config: GoogleSourceConfig, secrets: Sequence[str],
              what: str) -> SourceError:
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    name = config.name
    if isinstance(exc, RefreshError):
        return SourceError(name, _token_error(exc, config, secrets))
    if isinstance(exc, TransportError):
        detail = scrub(str(exc), secrets)
        return SourceError(name, f"cannot get an access token: the token endpoint is "
                                 f"unreachable ({detail}){tls_hint(detail)}")
    if isinstance(exc, RetriesExhausted) and isinstance(exc.error, HttpError):
        message = _http_error(exc.error, config, what, secrets)
        return SourceError(name, (
            f"{message} after {exc.retries} retries; Google is rate limiting or unavailable, "
            "nothing was written and the next run tries again (raise max_retries/"
            "max_retry_wait if this persists)"))
    if isinstance(exc, HttpError):
        return SourceError(name, _http_error(exc, config, what, secrets) + _hint(exc, what))
    if isinstance(exc, BudgetExceeded):
        return SourceError(name, (
            f"reading {what}: Google asked to wait {exc.asked:g}s (Retry-After), more than the "
            f"{exc.left:g}s left of max_retry_wait ({config.max_retry_wait:g}s); nothing was "
            "written, the next run tries again"))
    if isinstance(exc, socket.timeout | TimeoutError):
        return SourceError(name, f"reading {what}: no answer from {config.api_endpoint} within "
                                 f"{config.timeout:g}s; nothing was written")
    if isinstance(exc, OSError | ssl.SSLError) or type(exc).__module__.startswith("httplib2"):
        detail = scrub(str(exc) or type(exc).__name__, secrets)
        return SourceError(name, (
            f"reading {what}: connection to {config.api_endpoint} failed: "
            f"{type(exc).__name__}: {detail}{tls_hint(detail)}; nothing was written"))
    detail = scrub(str(exc) or type(exc).__name__, secrets)
    return SourceError(name, f"reading {what} failed: {type(exc).__name__}: {detail}; "
                             "nothing was written")


def _token_error(exc: BaseException, config: GoogleSourceConfig,
                 secrets: Sequence[str]) -> str:
    # RefreshError args: (message, response body); the message reads "code: description".
    detail = scrub(str(exc.args[0]) if exc.args else str(exc), secrets).rstrip(".")
    who = f"as {config.subject}" if config.subject else "as the service account"
    base = f"cannot get an access token ({who}): {detail}"
    if "unauthorized_client" in detail:
        return f"{base} -- {DELEGATION_HINT}"
    if "Invalid JWT Signature" in detail:
        return (f"{base} -- the key in credentials_file was deleted or disabled (IAM > Service "
                "accounts > Keys): create a new key")
    if "invalid_grant" in detail and config.subject:
        return (f"{base} -- check that subject ({config.subject}) is an existing admin of the "
                "Workspace account, and that the key was not deleted")
    if "invalid_grant" in detail:
        return f"{base} -- the key may have been deleted or disabled; create a new key"
    return f"{base} -- check credentials_file"


def _body(exc: Any) -> dict[str, Any]:
    try:
        data = json.loads(exc.content)
    except (TypeError, ValueError):
        return {}
    return data.get("error", {}) if isinstance(data, dict) else {}


def _http_error(exc: Any, config: GoogleSourceConfig, what: str, secrets: Sequence[str]) -> str:
    status = exc.resp.status
    message = _body(exc).get("message") or exc.reason or ""
    reason = error_reason(exc)
    detail = scrub(f"{reason}: {message}" if reason else str(message), secrets).rstrip(".")
    return f"Google answered {status} reading {what} ({detail})"


def _hint(exc: Any, what: str) -> str:
    status = exc.resp.status
    if status == 401:
        return "; the access token was refused, nothing was written"
    if status == 403:
        return ("; the impersonated subject must be an admin allowed to read users and groups "
                "(or the service account needs an admin role), and customer/domain must be "
                "its own account; nothing was written")
    if status == 404 and what.startswith("members of group"):
        return "; check the group's email in `groups`; nothing was written"
    if status == 400:
        return "; check customer/domain; nothing was written"
    return "; nothing was written"
