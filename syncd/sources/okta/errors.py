"""Any failure of an Okta read -> one admin-readable SourceError line, without secrets."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.sources.base import SourceError
from syncd.sources.common import scrub, tls_hint
from syncd.sources.okta.client import ApiError, PageError, SessionSetupError, TokenError
from syncd.sources.okta.config import OktaCredentialKind, OktaSourceConfig
from syncd.sources.throttle import BudgetExceeded

SSWS_HINT = ("create a new API token (Security > API > Tokens) as an admin who can read "
             "users, groups and apps, and put it in api_token")
OAUTH_HINT = ("check client_id, that the service app's public key matches private_key_file "
              "(and key_id), and that the app was granted the scopes {scopes} "
              "(Okta API Scopes tab) and a read-only admin role")


def describe_credential(config: OktaSourceConfig) -> str:
    if config.credential_kind is OktaCredentialKind.API_TOKEN:
        return f"API token, org {config.org_url}"
    return f"OAuth service app {config.client_id}, org {config.org_url}"


def translate(exc: BaseException, config: OktaSourceConfig, secrets: Sequence[str],
              what: str) -> SourceError:
    """`what` says which read failed, e.g. "users (page 3)" or "members of group 00g1"."""
    name = config.name
    if isinstance(exc, ApiError):
        return SourceError(name, _api_error(exc, config, what, secrets))
    if isinstance(exc, TokenError):
        detail = scrub(str(exc.detail) or type(exc.detail).__name__, secrets).rstrip(".")
        hint = OAUTH_HINT.format(scopes=" ".join(config.scopes))
        if "invalid_scope" in detail or "scope" in detail.lower():
            hint = (f"grant the service app the scopes {' '.join(config.scopes)} "
                    "(Okta API Scopes tab)")
        return SourceError(name, f"cannot get an access token ({describe_credential(config)}): "
                                 f"{detail} -- {hint}")
    if isinstance(exc, BudgetExceeded):
        return SourceError(name, (
            f"reading {what}: Okta asked to wait {exc.asked:g}s for its rate limit "
            f"(X-Rate-Limit-Reset), more than the {exc.left:g}s left of max_retry_wait "
            f"({config.max_retry_wait:g}s); nothing was written, the next run tries again"))
    if isinstance(exc, SessionSetupError):
        return SourceError(name, str(exc))
    if isinstance(exc, PageError):
        return SourceError(name, f"reading {what}: Okta sent {exc}; nothing was written")
    if "X-Rate-Limit-Reset" in str(exc):
        # The SDK's own text carries HTML entities (&#39;); say it plainly.
        return SourceError(name, (
            f"reading {what}: a 429/503/504 came without Okta's X-Rate-Limit-Reset and Date "
            "headers (a proxy in front of Okta?), so how long to wait is unknown; nothing was "
            "written, the next run tries again"))
    message = _transport_error(exc, config, what, secrets)
    if message is not None:
        return SourceError(name, message)
    detail = scrub(str(exc) or type(exc).__name__, secrets)
    return SourceError(name, f"reading {what} failed: {type(exc).__name__}: {detail}; "
                             "nothing was written")


def _api_error(exc: ApiError, config: OktaSourceConfig, what: str,
               secrets: Sequence[str]) -> str:
    detail = scrub(f"{exc.code}: {exc.summary}" if exc.code else exc.summary, secrets)
    detail = detail.rstrip(".")
    base = f"Okta answered {exc.status} reading {what} ({detail})"
    if exc.status == 401:
        if config.credential_kind is OktaCredentialKind.API_TOKEN:
            return f"{base}: the API token was refused -- {SSWS_HINT}"
        return f"{base}: the access token was refused -- check that org_url is the right org"
    if exc.status == 403:
        if config.credential_kind is OktaCredentialKind.API_TOKEN:
            return (f"{base}: the token's admin may not read this -- use a token of a "
                    "read-only or super admin")
        return (f"{base}: grant the service app the scopes {' '.join(config.scopes)} and a "
                "read-only admin role")
    if exc.status == 404 and what.startswith("users assigned to app"):
        return f"{base}: check the app id in `app` (Applications > the app > its URL)"
    if exc.status == 404 and what.startswith("members of group"):
        return f"{base}: check the group id in `groups` (Directory > Groups > its URL)"
    if exc.status in (429, 503, 504):
        return (f"{base} after {config.max_retries} retries; Okta is rate limiting or "
                "unavailable, nothing was written and the next run tries again (raise "
                "max_retries/max_retry_wait if this persists)")
    return f"{base}; nothing was written"


def _transport_error(exc: BaseException, config: OktaSourceConfig, what: str,
                     secrets: Sequence[str]) -> str | None:
    import asyncio

    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        return (f"reading {what}: no answer from {config.org_url} within {config.timeout:g}s; "
                "nothing was written")
    if isinstance(exc, aiohttp.ClientError):
        detail = scrub(str(exc) or type(exc).__name__, secrets).rstrip(".")
        return (f"reading {what}: connection to {config.org_url} failed: "
                f"{type(exc).__name__}: {detail}{tls_hint(detail)}; nothing was written")
    return None
