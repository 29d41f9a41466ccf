"""The Microsoft Entra ID source: users from Microsoft Graph (msgraph-sdk, raw JSON pages).

`read()` is synchronous like every source: it runs one `asyncio.run` that
builds the credential, HTTP client and request adapter, pages through Graph to
the end and closes all of them. Any failure raises SourceError, so the run
aborts before writing ("could not read" never becomes "user left").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from syncd.sources.base import (
    NO_PROGRESS,
    ReadProgress,
    RecordProblem,
    SourceError,
    SourceRead,
    SourceRecord,
)
from syncd.sources.entra.attrs import flatten_user, graph_select, is_guest
from syncd.sources.entra.config import EntraSourceConfig

if TYPE_CHECKING:
    from kiota_abstractions.request_information import RequestInformation

    from syncd.sources.entra.graph import GraphSession

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Tally:
    """What one read saw; logged once per read."""

    pages: int = 0
    seen: int = 0
    disabled: int = 0
    guests: int = 0
    excluded_by_group: int = 0
    outside_groups: int = 0  # app scope: assigned, but not in `groups`
    ignored_principals: int = 0  # app scope: service principals assigned to the app
    problems: list[RecordProblem] = field(default_factory=list)


class EntraSource:
    """Reads the users of an Entra ID tenant, of some groups (nested members included), or
    those assigned to an enterprise application (`app`, see app_scope.py)."""

    def __init__(self, config: EntraSourceConfig) -> None:
        self.config = config
        self.select = graph_select(config)

    @property
    def name(self) -> str:
        return self.config.name

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        # The result travels in `box`, not as the coroutine's return value: on
        # Python 3.11 asyncio.run() formats repr(main task) when it restores the
        # SIGINT handler, and a task's repr includes repr(result) -- every
        # record, half a second for 100,000 users.
        box: list[SourceRead] = []
        asyncio.run(self._read(box))
        return box[0]

    async def _read(self, box: list[SourceRead]) -> None:
        try:
            # auth, errors and graph import the SDKs only when used: check they
            # are there (the slim image has neither), so a missing one is
            # reported as such instead of crashing the run.
            import azure.identity.aio  # noqa: F401
            import msgraph.graph_service_client  # noqa: F401

            from syncd.sources.entra.auth import CredentialSetupError, build_credential
            from syncd.sources.entra.errors import translate
            from syncd.sources.entra.graph import GraphSession
        except ImportError as exc:
            raise SourceError(self.name, (
                f"the Entra source needs msgraph-sdk and azure-identity ({exc.name} is "
                "missing): install syncd[entra]")) from None

        started = time.monotonic()
        try:
            credential, secrets = build_credential(self.config)
        except CredentialSetupError as exc:
            raise SourceError(self.name, f"cannot set up the credential: {exc}") from None
        tally = _Tally()
        try:
            async with credential, GraphSession(self.config, credential) as graph:
                records = await self._collect(graph, tally, secrets)
                requests = graph.requests
        except SourceError:
            raise
        except Exception as exc:  # setup or teardown; page errors are translated in _pages
            raise translate(exc, self.config, secrets, "Graph (session setup)") from None
        log.info(
            "entra_read", source=self.name, users=len(records), pages=tally.pages,
            requests=requests, skipped_disabled=tally.disabled, skipped_guests=tally.guests,
            excluded_by_group=tally.excluded_by_group, outside_groups=tally.outside_groups,
            ignored_principals=tally.ignored_principals, problems=len(tally.problems),
            seconds=round(time.monotonic() - started, 3),
        )
        box.append(SourceRead(records, tuple(tally.problems)))

    async def _collect(
        self, graph: GraphSession, tally: _Tally, secrets: Sequence[str]
    ) -> list[SourceRecord]:
        config = self.config
        found: dict[str, SourceRecord] = {}
        if config.app:
            found = await self._collect_app(graph, tally, secrets)
        elif config.groups:
            # Union of the groups, de-duplicated by object id.
            for group_id in config.groups:
                request = graph.group_users_request(group_id, self.select, config.page_size)
                await self._gather(graph, request, f"members of group {group_id}",
                                   found=found, tally=tally, secrets=secrets)
        else:
            # Disabled accounts are filtered by Graph (less to transfer) and again
            # below. Guests only below: userType is null on some old accounts and
            # `userType eq 'Member'` would silently drop them.
            filter_ = None if config.include_disabled else "accountEnabled eq true"
            request = graph.users_request(self.select, filter_, config.page_size)
            await self._gather(graph, request, "users", found=found, tally=tally,
                               secrets=secrets)
        for group_id in config.exclude_groups:
            request = graph.group_users_request(group_id, ["id"], config.page_size)
            what = f"members of group {group_id} (exclude_groups)"
            async for page in self._pages(graph, request, what, tally, secrets):
                for user in page:
                    if found.pop(str(user.get("id")), None) is not None:
                        tally.excluded_by_group += 1
        return list(found.values())

    async def _collect_app(
        self, graph: GraphSession, tally: _Tally, secrets: Sequence[str]
    ) -> dict[str, SourceRecord]:
        """Users assigned to the app; `groups` (nested members, as without app) narrows them."""
        from syncd.sources.entra.app_scope import collect_app_users

        config = self.config

        def pages(request: RequestInformation, what: str
                  ) -> AsyncGenerator[list[dict[str, Any]], None]:
            return self._pages(graph, request, what, tally, secrets)

        async def gather(request: RequestInformation, what: str,
                         found: dict[str, SourceRecord]) -> None:
            await self._gather(graph, request, what, found=found, tally=tally, secrets=secrets)

        found, assigned = await collect_app_users(config, graph, self.select, pages, gather)
        tally.ignored_principals = assigned.ignored
        if config.groups:
            allowed: set[str] = set()
            for group_id in config.groups:
                request = graph.group_users_request(group_id, ["id"], config.page_size)
                async for page in self._pages(graph, request, f"members of group {group_id}",
                                              tally, secrets):
                    allowed.update(str(user.get("id")) for user in page)
            kept = {uid: rec for uid, rec in found.items() if uid in allowed}
            tally.outside_groups = len(found) - len(kept)
            found = kept
        return found

    async def _gather(
        self, graph: GraphSession, request: RequestInformation, what: str, *,
        found: dict[str, SourceRecord], tally: _Tally, secrets: Sequence[str],
    ) -> None:
        skip_disabled = not self.config.include_disabled
        skip_guests = not self.config.include_guests
        async for page in self._pages(graph, request, what, tally, secrets):
            tally.seen += len(page)
            for user in page:
                # Inlined is_disabled / is_guest (100,000 users a read): Graph spells
                # them exactly `false` and "Guest"; other spellings take the slow check.
                if skip_disabled and user.get("accountEnabled") is False:
                    tally.disabled += 1
                    continue
                user_type = user.get("userType")
                if skip_guests and user_type is not None and user_type != "Member" and (
                        user_type == "Guest" or is_guest(user)):
                    tally.guests += 1
                    continue
                user_id = user.get("id")
                if type(user_id) is not str or not user_id:
                    tally.problems.append(RecordProblem(
                        f"{what} page {tally.pages}", "a user without an id; skipped"))
                    continue
                if user_id in found:
                    continue  # in several groups
                upn = user.get("userPrincipalName")
                origin = f"{upn} (id {user_id})" if upn else f"id {user_id}"
                # flatten_user's keys are lower-case already: SourceRecord directly,
                # not record(), which would lower-case them a second time.
                found[user_id] = SourceRecord(flatten_user(user), origin)

    async def _pages(
        self, graph: GraphSession, request: RequestInformation, what: str, tally: _Tally,
        secrets: Sequence[str],
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """graph.pages(), with every failure turned into a SourceError naming the page."""
        from syncd.sources.entra.errors import translate

        page_no = 0
        pages = graph.pages(request)
        try:
            while True:
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    where = f"{what} (page {page_no + 1})"
                    raise translate(exc, self.config, secrets, where) from None
                page_no += 1
                tally.pages += 1
                yield page
        finally:
            await pages.aclose()
