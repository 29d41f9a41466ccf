"""One Okta session: the okta SDK's auth, transport and rate-limit retries; pages as raw JSON.

Why raw JSON pages: the SDK's typed API (`UserApi.list_users`) turns every
user into a pydantic model, and `okta.client` imports every generated API and
model (about 4 s of start-up); see docs/okta.md for the measured figures.
The SDK's RequestExecutor still does what matters: the SSWS header or the
OAuth private_key_jwt token exchange, and the 429 backoff on
X-Rate-Limit-Reset. Here its waits are charged to the read's RetryBudget, and
pages are decoded with msgspec.

Everything is built and closed inside one `asyncio.run` (an aiohttp session
cannot outlive its event loop). okta and aiohttp are imported lazily.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec

from syncd.sources.common import CaFileError, trust
from syncd.sources.jsonapi import Origin
from syncd.sources.okta.config import OktaCredentialKind, OktaSourceConfig
from syncd.sources.throttle import RetryBudget

if TYPE_CHECKING:
    import aiohttp

SDK_LOGGER = "okta-sdk-python"
# The SDK renews an OAuth token this many minutes before it expires.
TOKEN_RENEWAL_MINUTES = 5

_decode_page = msgspec.json.Decoder(list[dict[str, Any]]).decode


class SessionSetupError(Exception):
    """The session could not be built from the config (a bad ca_file or private key...)."""


class PageError(Exception):
    """A page that is not what Okta sends (not a JSON array, a next link to another host)."""


class TokenError(Exception):
    """The OAuth token exchange failed; `detail` is the SDK's error (no secret in it)."""

    def __init__(self, detail: BaseException) -> None:
        super().__init__(str(detail))
        self.detail = detail


class ApiError(Exception):
    """Okta answered a page request with an error status (after the SDK's retries)."""

    def __init__(self, status: int, body: str, headers: Any) -> None:
        self.status = status
        self.code, self.summary = _okta_error(body)
        self.headers = headers
        super().__init__(f"{status} {self.code}: {self.summary}")


def _okta_error(body: str) -> tuple[str, str]:
    """(errorCode, errorSummary) of Okta's error document, else ("", start of the body)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "", " ".join(body.split())[:200]
    if isinstance(data, dict):
        code = data.get("errorCode") or data.get("error") or ""
        summary = data.get("errorSummary") or data.get("error_description") or ""
        return str(code), str(summary)
    return "", ""


def quiet_sdk_logger() -> None:
    """The SDK logs every request at DEBUG with its headers (the API token among them)
    and every failure at ERROR; the SourceError carries the same facts. OktaClient
    disables this logger by default; we do too, unless it was configured on purpose.
    """
    logger = logging.getLogger(SDK_LOGGER)
    if logger.level == logging.NOTSET:
        logger.disabled = True


def _executor_class(budget: RetryBudget) -> Any:
    """The SDK's RequestExecutor, with every wait charged to this read's budget.

    The SDK waits for X-Rate-Limit-Reset only on 429 and re-sends a 503/504 at
    once; here every retryable status waits for the reset the headers give, and
    a wait that does not fit in the budget ends the read instead of sleeping.
    """
    from okta.request_executor import RequestExecutor

    class BudgetedRequestExecutor(RequestExecutor):
        def is_too_many_requests(self, status: int | None, response: Any) -> bool:
            return bool(self.is_retryable_status(status))  # type: ignore[no-untyped-call]

        async def pause_for_backoff(self, backoff_time: float) -> None:
            import asyncio

            await asyncio.sleep(budget.charge(float(backoff_time)))

        async def fire_request(self, request: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
            # The SDK's fire_request decodes every GET body with json.loads only to
            # decide whether to cache it (a list never is; the cache is a no-op
            # here anyway): a second full decode of each page. Straight to the
            # send-and-retry loop instead.
            result: tuple[Any, Any, Any, Any] = await self.fire_request_helper(  # type: ignore[no-untyped-call]
                request, 0, time.time())
            return result

    return BudgetedRequestExecutor


def _http_client_class(timeout: float) -> Any:
    """The SDK's HTTPClient with our per-request timeout.

    The SDK's `requestTimeout` is both the aiohttp timeout and a cap on the whole
    retry sequence; the budget does the latter, so it is 0 and this sets the former.
    """
    import aiohttp
    from okta.http_client import HTTPClient

    class TimedHTTPClient(HTTPClient):
        def __init__(self, http_config: dict[str, Any]) -> None:
            super().__init__(http_config)  # type: ignore[no-untyped-call]
            self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 30.0))

    return TimedHTTPClient


class OktaSession:
    """Async context manager owning the aiohttp session and the SDK's request executor."""

    def __init__(self, config: OktaSourceConfig, budget: RetryBudget, *,
                 api_token: str | None = None, private_key: str | None = None) -> None:
        self.config = config
        self.budget = budget
        self._api_token = api_token
        self._private_key = private_key
        self._origin = Origin.of(config.org_url)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    def _sdk_config(self) -> dict[str, Any]:
        config = self.config
        client: dict[str, Any] = {
            "orgUrl": config.org_url,
            "rateLimit": {"maxRetries": config.max_retries},
            "requestTimeout": 0,
            "raiseException": False,
            "userAgent": "syncd",
        }
        if config.credential_kind is OktaCredentialKind.API_TOKEN:
            client |= {"authorizationMode": "SSWS", "token": self._api_token}
        else:
            client |= {
                "authorizationMode": "PrivateKey", "clientId": config.client_id,
                "scopes": list(config.scopes), "privateKey": self._private_key,
                "oauthTokenRenewalOffset": TOKEN_RENEWAL_MINUTES,
            }
            if config.key_id:
                client["kid"] = config.key_id
        # The SDK checks https; a loopback http org (a test stand-in) is allowed by our config.
        testing = {"testingDisableHttpsCheck": urlsplit(config.org_url).scheme == "http"}
        return {"client": client, "testing": testing}

    async def __aenter__(self) -> OktaSession:
        import aiohttp
        from okta.cache.no_op_cache import NoOpCache
        from okta.config.config_validator import ConfigValidator

        config = self.config
        quiet_sdk_logger()
        try:
            verify = trust(config.ca_file)
        except CaFileError as exc:
            raise SessionSetupError(str(exc)) from None
        sdk_config = self._sdk_config()
        try:
            ConfigValidator(sdk_config)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            lines = [line for line in str(exc).splitlines()[1:] if line.strip()][:3]
            raise SessionSetupError("the okta SDK refused the settings: "
                                    + " ".join(lines)) from None
        # One connection: pages are read one after the other, so the org's
        # concurrent-request limit is never approached.
        connector = aiohttp.TCPConnector(ssl=verify, limit=1)
        self._session = aiohttp.ClientSession(connector=connector)
        executor_class = _executor_class(self.budget)
        self.executor = executor_class(sdk_config, NoOpCache(),  # type: ignore[no-untyped-call]
                                       _http_client_class(config.timeout))
        self.executor.set_session(self._session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def pages(self, path: str, params: dict[str, str]) -> AsyncGenerator[list[dict[str, Any]],
                                                                                None]:
        """Every page of a collection, following `Link: <...>; rel="next"` to the end."""
        url: str | None = f"{self.config.org_url}{path}?{urlencode(params)}"
        while url is not None:
            try:
                request, error = await self.executor.create_request("GET", url)
            except (ValueError, TypeError, KeyError) as exc:
                # Only the OAuth path can raise here: the SDK signing the client
                # assertion with an unusable private key.
                raise TokenError(exc) from None
            if error is not None:
                raise TokenError(error)
            self.requests += 1
            _, response, body, error = await self.executor.fire_request(request)
            if error is not None:
                raise error if isinstance(error, BaseException) else PageError(str(error))
            if response.status != 200:
                raise ApiError(response.status, body or "", response.headers)
            try:
                page = _decode_page(body or "")
            except msgspec.DecodeError as exc:
                raise PageError(f"a page that is not a JSON array of objects ({exc})") from None
            yield page
            url = next_link(response.headers.getall("Link", []))
            # The SDK would send the token wherever the link points.
            if url is not None and (problem := self._origin.foreign_link(url)):
                raise PageError(problem)


def next_link(values: list[str]) -> str | None:
    """The rel="next" target among Link header values (one or several headers)."""
    for value in values:
        for part in value.split(","):
            target, _, params = part.partition(";")
            rels = [p.strip().removeprefix("rel=").strip('"') for p in params.split(";")
                    if p.strip().startswith("rel=")]
            if "next" in " ".join(rels).split():
                return target.strip().removeprefix("<").removesuffix(">")
    return None
