"""One Graph session: msgraph-sdk's request building, auth and retry, pages read as raw JSON.

Why raw JSON: msgraph-sdk spends milliseconds turning ONE user into a `User`
model (see graph-notes.md: 628 s for 50,000 users); reading the page bytes and
decoding them with msgspec is as fast as a plain httpx pager.

A session lives on one event loop (an httpx client cannot outlive its loop):
one read's, or a kept source's for as long as the daemon runs (see
syncd/sources/jsonapi.py). msgraph, kiota and httpx are imported lazily.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from syncd.net import proxy_for
from syncd.sources.common import CaFileError, trust
from syncd.sources.entra.config import EntraSourceConfig
from syncd.sources.jsonapi import Origin

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials_async import AsyncTokenCredential
    from kiota_abstractions.request_information import RequestInformation

# Added to every computed backoff by kiota (its RetryHandlerOption "delay"); a
# Retry-After header from Graph replaces the backoff.
RETRY_BASE_DELAY = 1.0


class _Page(msgspec.Struct):
    value: list[dict[str, Any]] = []
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")


_decode_page = msgspec.json.Decoder(_Page).decode


class SessionSetupError(Exception):
    """The HTTP session could not be built from the config (e.g. an unreadable ca_file)."""


class PageError(Exception):
    """A page that is not what Graph sends (not JSON, or a next link to another host)."""


def _retry_handler(max_retries: int, cap: float) -> Any:
    """kiota's RetryHandler with a real cap on the wait.

    RetryHandlerOption's `delay` (exposed as `max_delay`) is a base delay ADDED
    to every backoff, and a Retry-After header is obeyed uncapped up to 180 s.
    Here a backoff is cut to `cap`, and a Retry-After over `cap` ends the
    retries: the run fails with a clear message instead of sleeping for minutes.
    """
    from kiota_http.middleware import RetryHandler
    from kiota_http.middleware.options import RetryHandlerOption

    class CappedRetryHandler(RetryHandler):
        def get_delay_time(
            self, retry_count: int, response: httpx.Response | None = None,
            delay: float = RETRY_BASE_DELAY,
        ) -> float:
            asked = self._get_retry_after(response)
            if asked and asked > cap:
                return float(RetryHandlerOption.MAX_DELAY)  # kiota: no retry at this value
            return float(min(super().get_delay_time(retry_count, response, delay), cap))

    option = RetryHandlerOption(delay=min(RETRY_BASE_DELAY, cap), max_retries=max_retries)
    return CappedRetryHandler(options=option)


class GraphSession:
    """The httpx transport, client and request adapter of one credential; `open()`, then
    `close()` (or `async with`)."""

    def __init__(self, config: EntraSourceConfig,
                 credential: Callable[[], AsyncTokenCredential]) -> None:
        """`credential` makes the credential, once the session's settings are checked."""
        self.config = config
        self._make_credential = credential
        self.credential: AsyncTokenCredential | None = None
        self._origin = Origin.of(config.graph_url)
        self._client: httpx.AsyncClient | None = None
        self._transport: httpx.AsyncBaseTransport | None = None
        self.requests = 0

    async def __aenter__(self) -> GraphSession:
        return self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> GraphSession:
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.middleware import ParametersNameDecodingHandler
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_service_client import GraphServiceClient
        from msgraph_core import GraphClientFactory

        from syncd.sources.entra.transport import threaded_transport

        config = self.config
        # The OS trust store plus ca_file (a TLS-inspecting proxy's CA), as for Nebuly.
        try:
            verify = trust(config.ca_file)
        except CaFileError as exc:
            raise SessionSetupError(str(exc)) from None
        self.credential = credential = self._make_credential()
        # HTTP/1.1: pages are read one after the other, so HTTP/2 multiplexing gains
        # nothing and costs CPU. An explicit transport gets no proxy from httpx:
        # HTTPS_PROXY/NO_PROXY are applied here. Blocking I/O in a thread: see transport.py.
        transport = threaded_transport(httpx.HTTPTransport(
            verify=verify, proxy=proxy_for(config.graph_url)))
        timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 30.0))
        client = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._client, self._transport = client, transport
        # Only the middleware the reads need: the (capped) retries that carry the
        # throttling behaviour, and kiota's decoding of `%24select` back to `$select`
        # in the query its URL templates build. The SDK's default chain also has
        # redirect, user-agent, URL-replace, headers- and body-inspection and
        # telemetry handlers: Graph does not redirect these reads, and each handler
        # costs every request a pass through the pipeline.
        middleware = [_retry_handler(config.max_retries, config.max_retry_delay),
                      ParametersNameDecodingHandler()]
        GraphClientFactory.create_with_custom_middleware(middleware, client=client)
        # allowed_hosts: the bearer token goes to the Graph host and nowhere else.
        auth = AzureIdentityAuthenticationProvider(
            credential,
            scopes=[config.token_scope],
            allowed_hosts=[urlsplit(config.graph_url).hostname or ""],
        )
        self.adapter = GraphRequestAdapter(auth, client=client)
        self.adapter.base_url = config.graph_url  # no trailing slash (validated)
        self.graph = GraphServiceClient(request_adapter=self.adapter)
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        self._error_map: dict[str, Any] = {"XXX": ODataError}
        return self

    async def close(self) -> None:
        """Close the HTTP client and its transport, then the credential."""
        try:
            if self._client is not None:
                await self._client.aclose()
            if self._transport is not None:
                # AsyncClient.aclose() does not close the transport msgraph_core
                # wraps around ours: close ours too.
                await self._transport.aclose()
            self._client = self._transport = None
        finally:
            if self.credential is not None:
                await self.credential.close()

    def users_request(
        self, select: list[str], filter_: str | None, top: int
    ) -> RequestInformation:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=select, filter=filter_, top=top
        )
        return self.graph.users.to_get_request_information(
            RequestConfiguration(query_parameters=query)
        )

    def group_users_request(
        self, group_id: str, select: list[str], top: int, *, nested: bool = True
    ) -> RequestInformation:
        """Users among the group's members: transitive (/transitiveMembers/graph.user), or
        direct only (/members/graph.user; what an app assignment to the group grants)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration

        group = self.graph.groups.by_group_id(group_id)
        builder: Any = group.transitive_members.graph_user if nested else group.members.graph_user
        # Both builders' query parameter classes carry the same fields.
        query = type(builder).GraphUserRequestBuilderGetQueryParameters(select=select, top=top)
        request: RequestInformation = builder.to_get_request_information(
            RequestConfiguration(query_parameters=query))
        return request

    def service_principals_request(self, filter_: str, select: list[str]) -> RequestInformation:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.service_principals_request_builder import (
            ServicePrincipalsRequestBuilder,
        )

        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=filter_, select=select
        )
        return self.graph.service_principals.to_get_request_information(
            RequestConfiguration(query_parameters=query)
        )

    def assigned_to_request(self, sp_id: str, select: list[str], top: int) -> RequestInformation:
        """/servicePrincipals/{id}/appRoleAssignedTo: who is assigned to the app."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (  # noqa: E501
            AppRoleAssignedToRequestBuilder,
        )

        query = AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters(
            select=select, top=top
        )
        builder = self.graph.service_principals.by_service_principal_id(sp_id)
        return builder.app_role_assigned_to.to_get_request_information(
            RequestConfiguration(query_parameters=query)
        )

    def users_by_ids_request(self, ids: list[str], select: list[str]) -> RequestInformation:
        """POST /directoryObjects/getByIds for up to 1000 users.

        The SDK's builder has no $select, and without one v1.0 answers only a
        default subset of user properties (no department, no accountEnabled):
        the query is written here.
        """
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        request = RequestInformation(Method.POST)
        request.url = (f"{self.config.graph_url}/directoryObjects/getByIds"
                       f"?$select={','.join(select)}")
        request.headers.try_add("Accept", "application/json")
        request.set_stream_content(
            msgspec.json.encode({"ids": ids, "types": ["user"]}), "application/json")
        return request

    async def pages(
        self, first: RequestInformation
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Every page of a collection, following @odata.nextLink to the end.

        One page at a time: requesting the next page while the caller works on
        this one was measured no faster (the transport's thread then competes
        for the GIL with the caller) and cost more CPU.
        """
        request = first
        while True:
            page = await self._page(request)
            yield page.value
            if not page.next_link:
                return
            if problem := self._origin.foreign_link(page.next_link):
                raise PageError(problem)
            request = self._follow(page.next_link)

    async def _page(self, request: RequestInformation) -> _Page:
        self.requests += 1
        body = await self.adapter.send_primitive_async(request, "bytes", self._error_map)
        if not body:
            raise PageError("an empty response where a page was expected")
        try:
            return _decode_page(body)
        except msgspec.DecodeError as exc:
            raise PageError(f"a page that is not Graph's JSON ({exc})") from None

    @staticmethod
    def _follow(next_link: str) -> RequestInformation:
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        request = RequestInformation(Method.GET)
        request.url = next_link
        request.headers.try_add("Accept", "application/json")
        return request
