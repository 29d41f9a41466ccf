"""One Directory API session: google-api-python-client (static discovery) over httplib2.

Retries are ours, not the client library's `num_retries`: its backoff ignores
Retry-After and has no total cap. Here 429, 5xx and the 403 rate-limit
reasons are retried with Retry-After honoured (else full-jitter backoff),
each wait charged to the read's RetryBudget. A dropped connection is not
retried here (httplib2 itself reconnects once for a GET); a second drop
fails the read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from syncd.sources.google.config import MAX_MEMBERS_PAGE, GoogleSourceConfig
from syncd.sources.throttle import RetryBudget

# 403s that mean "slow down", as the Directory API and googleapiclient name them.
RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded",
                                "quotaExceeded"})
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RetriesExhausted(Exception):
    """A request still failed after max_retries retries; `error` is the last HttpError."""

    def __init__(self, error: Exception, retries: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.retries = retries


def error_reason(exc: Any) -> str:
    """The first `reason` of a googleapiclient HttpError ("" when there is none)."""
    try:
        details = exc.error_details
    except AttributeError:
        return ""
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", ""))
    return ""


def _retry_after(exc: Any) -> float | None:
    value = getattr(exc, "resp", {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class Directory:
    """The Directory API client for one read; `requests` counts HTTP calls made."""

    def __init__(self, config: GoogleSourceConfig, credentials: Any, budget: RetryBudget,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import google_auth_httplib2
        import httplib2
        from googleapiclient.discovery import build

        self.config = config
        self.budget = budget
        self._sleep = sleep
        self.requests = 0
        http = httplib2.Http(
            ca_certs=str(config.ca_file) if config.ca_file else None, timeout=config.timeout)
        self._http = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
        # Static discovery: the admin directory_v1 document ships with the library,
        # so nothing is fetched from googleapis.com (and api_endpoint applies to all).
        self.service = build(
            "admin", "directory_v1", http=self._http, static_discovery=True,
            cache_discovery=False, client_options={"api_endpoint": config.api_endpoint})

    def close(self) -> None:
        self.service.close()

    def users(self) -> Iterator[list[dict[str, Any]]]:
        """Every page of users.list for the customer (or domain), to the end."""
        config = self.config
        scope = {"domain": config.domain} if config.domain else {"customer": config.customer_id}
        users = self.service.users()
        request = users.list(maxResults=config.page_size, **scope)
        while request is not None:
            page = self._execute(request)
            yield list(page.get("users", []))
            request = users.list_next(request, page)

    def members(self, group: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of members.list of a group, nested groups' members included."""
        members = self.service.members()
        request = members.list(groupKey=group, includeDerivedMembership=True,
                               maxResults=MAX_MEMBERS_PAGE)
        while request is not None:
            page = self._execute(request)
            yield list(page.get("members", []))
            request = members.list_next(request, page)

    def _execute(self, request: Any) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        attempt = 0
        while True:
            self.requests += 1
            try:
                result: dict[str, Any] = request.execute(num_retries=0)
                return result
            except HttpError as exc:
                status = exc.resp.status
                throttled = status == 403 and error_reason(exc) in RATE_LIMIT_REASONS
                if status not in RETRY_STATUS and not throttled:
                    raise
                attempt += 1
                if attempt > self.config.max_retries:
                    raise RetriesExhausted(exc, attempt - 1) from None
                asked = _retry_after(exc)
                wait = asked if asked is not None else self.budget.backoff(attempt)
                self._sleep(self.budget.charge(wait))
