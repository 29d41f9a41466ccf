"""Any failure of an Entra read -> one admin-readable SourceError line, without secrets."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.sources.base import SourceError
from syncd.sources.common import scrub, tls_hint
from syncd.sources.entra.auth import auth_hint, describe_credential
from syncd.sources.entra.config import EntraSourceConfig
from syncd.sources.entra.graph import PageError, SessionSetupError

PERMISSIONS_HINT = (
    "grant the app the Microsoft Graph APPLICATION permissions User.Read.All and "
    "GroupMember.Read.All, then 'Grant admin consent'"
)
# `app:` also reads service principals and their assignments (Application.Read.All)
# and resolves assigned users with directoryObjects/getByIds (Directory.Read.All).
APP_PERMISSIONS_HINT = (
    "grant the app the Microsoft Graph APPLICATION permissions User.Read.All, "
    "GroupMember.Read.All, Application.Read.All and Directory.Read.All, then 'Grant admin "
    "consent'"
)


def translate(
    exc: BaseException, config: EntraSourceConfig, secrets: Sequence[str], what: str
) -> SourceError:
    """`what` says which read failed, e.g. "users" or "members of group <id>" (page n)."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError
    from kiota_abstractions.api_error import APIError

    name = config.name
    if isinstance(exc, AzureError):
        # Only the credential speaks azure-core here (Graph calls go through httpx):
        # a refusal (ClientAuthenticationError) or an unreachable token endpoint.
        detail = scrub(exc.message or type(exc).__name__, secrets)
        hint = auth_hint(config, detail)
        if not isinstance(exc, ClientAuthenticationError):
            hint = f"cannot reach the token endpoint{tls_hint(detail)}"
        return SourceError(
            name, f"cannot get an access token ({describe_credential(config)}): "
            f"{detail.rstrip('.')} -- {hint}",
        )
    if isinstance(exc, APIError):
        return SourceError(name, _api_error(exc, config, what, secrets))
    if isinstance(exc, SessionSetupError):
        return SourceError(name, str(exc))
    if isinstance(exc, PageError):
        return SourceError(name, f"reading {what}: Graph sent {exc}; nothing was written")
    message = _transport_error(exc, config, what, secrets)
    if message is not None:
        return SourceError(name, message)
    detail = scrub(str(exc) or type(exc).__name__, secrets)
    return SourceError(name, f"reading {what} failed: {type(exc).__name__}: {detail}")


def _api_error(exc: BaseException, config: EntraSourceConfig, what: str,
               secrets: Sequence[str]) -> str:
    status = getattr(exc, "response_status_code", None)
    code, text = _odata(exc)
    detail = scrub(f"{code}: {text}" if code else text, secrets).rstrip(".")
    base = f"Graph answered {status} reading {what}"
    if status == 401:
        return f"{base} (token refused: {detail}); check that tenant_id is the right directory"
    if status == 403:
        return f"{base} ({detail}); {APP_PERMISSIONS_HINT if config.app else PERMISSIONS_HINT}"
    if status == 404 and "(assigned to the app)" in what:
        return f"{base}: the group no longer exists (deleted during the read?); the next run " \
            "reads the assignments again"
    if status == 404 and what.startswith("members of group"):
        return f"{base}: the group does not exist; check the object id in groups/exclude_groups"
    if status in (429, 503, 504):
        asked = _retry_after(exc)
        if asked is not None and asked > config.max_retry_delay:
            return (f"{base} ({detail}): Graph asked to wait {asked:g}s (Retry-After), more "
                    f"than max_retry_delay ({config.max_retry_delay:g}s); the next run tries "
                    "again")
        return (f"{base} ({detail}) after {config.max_retries} retries; Graph is throttling or "
                "unavailable, the next run tries again (raise max_retries/max_retry_delay if "
                "this persists)")
    if status == 400:
        return (f"{base}: {detail}; check the attribute names in end_user/tags "
                "(Graph user property names)")
    return f"{base}: {detail}"


def _odata(exc: BaseException) -> tuple[str | None, str]:
    """(code, message) of a Graph ODataError, else (None, str(exc))."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code or message:
        return code, message or ""
    return None, getattr(exc, "message", None) or str(exc)


def _transport_error(exc: BaseException, config: EntraSourceConfig, what: str,
                     secrets: Sequence[str]) -> str | None:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return (f"reading {what}: no answer from {config.graph_url} within "
                f"{config.timeout:g}s ({type(exc).__name__}); nothing was written")
    if isinstance(exc, httpx.HTTPError):
        detail = scrub(str(exc) or type(exc).__name__, secrets)
        return (f"reading {what}: connection to {config.graph_url} failed: "
                f"{type(exc).__name__}: {detail.rstrip('.')}{tls_hint(detail)}; "
                "nothing was written")
    return None


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "response_headers", None) or {}
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
