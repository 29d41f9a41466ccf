"""The Microsoft Entra ID source: users from Microsoft Graph (msgraph-sdk, raw JSON pages).

`read()` is synchronous like every source (the frame is syncd/sources/jsonapi.py):
it reads the credential's secret files, opens a Graph session (credential, HTTP
client, request adapter), pages through Graph to the end and closes the
session. A source kept by a daemon keeps its session, and so its token and
connection, between reads; it opens a new one when the secret, certificate or
token file changed. Any failure raises SourceError, so the run aborts before
writing ("could not read" never becomes "user left").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, ClassVar

import structlog

from syncd.sources.base import ReadProgress, RecordProblem, SourceError, SourceRecord
from syncd.sources.entra.attrs import graph_select, is_guest, user_flattener
from syncd.sources.entra.config import EntraSourceConfig
from syncd.sources.jsonapi import AsyncJsonApiSource, Outcome, Page, Pager

if TYPE_CHECKING:
    from kiota_abstractions.request_information import RequestInformation

    from syncd.sources.entra.graph import GraphSession

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Tally:
    """What one read saw; logged once per read."""

    disabled: int = 0
    guests: int = 0
    excluded_by_group: int = 0
    outside_groups: int = 0  # app scope: assigned, but not in `groups`
    ignored_principals: int = 0  # app scope: service principals assigned to the app
    problems: list[RecordProblem] = field(default_factory=list)


@dataclass(slots=True)
class _Read:
    """One read's session, pager and tally, passed down the collecting methods."""

    graph: GraphSession
    pager: Pager
    tally: _Tally = field(default_factory=_Tally)


class EntraSource(AsyncJsonApiSource):
    """Reads the users of an Entra ID tenant, of some groups (nested members included), or
    those assigned to an enterprise application (`app`, see app_scope.py)."""

    event: ClassVar[str] = "entra_read"

    def __init__(self, config: EntraSourceConfig) -> None:
        super().__init__(config)
        self.config: EntraSourceConfig = config
        self.select = graph_select(config)
        self.flatten = user_flattener(config)
        # A kept source's open session and the fingerprint of the files it was built from.
        self._session: GraphSession | None = None
        self._fingerprint = ""

    def keep_open(self) -> None:
        """Keep the session (credential, token, connection) between reads, until close()."""
        self.kept = True

    async def _read_async(self, progress: ReadProgress) -> Outcome:
        from syncd.sources.entra.auth import (
            CredentialSetupError,
            build_credential,
            read_credential_files,
        )
        from syncd.sources.entra.errors import translate
        from syncd.sources.entra.graph import GraphSession

        config = self.config
        try:
            files = read_credential_files(config)
            if self._session is not None and self._fingerprint != files.fingerprint:
                log.info("source.credential_changed", source=self.name,
                         consequence="a new credential and session for this read")
                await self._release()
            fresh = self._session is None
            if fresh:
                session = GraphSession(config, partial(build_credential, config, files))
            else:
                assert self._session is not None
                session = self._session
        except CredentialSetupError as exc:
            raise self.setup_failed(exc) from None

        def failed(exc: BaseException, what: str) -> SourceError:
            return translate(exc, config, files.secrets, what)

        read = _Read(session, Pager(failed, progress))
        requests_before = session.requests
        try:
            if fresh:
                session.open()
            records = await self._collect(read)
        except BaseException as exc:
            # A kept source starts the next read afresh after a failed one.
            self._session = None
            with contextlib.suppress(Exception):
                await session.close()
            if isinstance(exc, SourceError) or not isinstance(exc, Exception):
                raise
            if isinstance(exc, CredentialSetupError):
                raise self.setup_failed(exc) from None
            # Session setup: page errors are translated by the pager.
            raise failed(exc, "Graph (session setup)") from None
        if self.kept:
            self._session, self._fingerprint = session, files.fingerprint
        else:
            await self._close(session, files.secrets)
        tally = read.tally
        return Outcome(records, tally.problems, {
            "pages": read.pager.pages, "requests": session.requests - requests_before,
            "skipped_disabled": tally.disabled, "skipped_guests": tally.guests,
            "excluded_by_group": tally.excluded_by_group,
            "outside_groups": tally.outside_groups,
            "ignored_principals": tally.ignored_principals,
        })

    async def _close(self, session: GraphSession, secrets: Sequence[str]) -> None:
        from syncd.sources.entra.errors import translate

        try:
            await session.close()
        except Exception as exc:
            raise translate(exc, self.config, secrets, "Graph (session teardown)") from None

    async def _release(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await self._close(session, ())

    async def _collect(self, read: _Read) -> list[SourceRecord]:
        config, graph = self.config, read.graph
        found: dict[str, SourceRecord] = {}
        if config.app:
            found = await self._collect_app(read)
        elif config.groups:
            # Union of the groups, de-duplicated by object id.
            for group_id in config.groups:
                request = graph.group_users_request(group_id, self.select, config.page_size)
                await self._gather(read, request, f"members of group {group_id}", found)
        else:
            # Disabled accounts are filtered by Graph (less to transfer) and again
            # below. Guests only below: userType is null on some old accounts and
            # `userType eq 'Member'` would silently drop them.
            filter_ = None if config.include_disabled else "accountEnabled eq true"
            request = graph.users_request(self.select, filter_, config.page_size)
            await self._gather(read, request, "users", found)
        if config.exclude_groups:
            excluded = await self._member_ids(read, config.exclude_groups, " (exclude_groups)")
            for user_id in excluded & found.keys():
                del found[user_id]
                read.tally.excluded_by_group += 1
        return list(found.values())

    async def _collect_app(self, read: _Read) -> dict[str, SourceRecord]:
        """Users assigned to the app; `groups` (nested members, as without app) narrows them."""
        from syncd.sources.entra.app_scope import collect_app_users

        config, graph, tally = self.config, read.graph, read.tally

        def pages(request: RequestInformation, what: str) -> AsyncIterator[Page]:
            return self._pages(read, request, what)

        async def gather(request: RequestInformation, what: str,
                         found: dict[str, SourceRecord]) -> None:
            await self._gather(read, request, what, found)

        found, assigned = await collect_app_users(config, graph, self.select, pages, gather)
        tally.ignored_principals = assigned.ignored
        if config.groups:
            allowed = await self._member_ids(read, config.groups)
            kept = {uid: rec for uid, rec in found.items() if uid in allowed}
            tally.outside_groups = len(found) - len(kept)
            found = kept
        return found

    async def _member_ids(self, read: _Read, group_ids: Sequence[str], why: str = ""
                          ) -> set[str]:
        """The object ids of the members of `group_ids` (nested members included)."""
        ids: set[str] = set()
        for group_id in group_ids:
            request = read.graph.group_users_request(group_id, ["id"], self.config.page_size)
            async for page in self._pages(read, request, f"members of group {group_id}{why}"):
                ids.update(str(user.get("id")) for user in page)
        return ids

    async def _gather(self, read: _Read, request: RequestInformation, what: str,
                      found: dict[str, SourceRecord]) -> None:
        skip_disabled = not self.config.include_disabled
        skip_guests = not self.config.include_guests
        flatten, tally = self.flatten, read.tally
        async for page in self._pages(read, request, what):
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
                        read.pager.where(what), "a user without an id; skipped"))
                    continue
                if user_id in found:
                    continue  # in several groups
                upn = user.get("userPrincipalName")
                origin = f"{upn} (id {user_id})" if upn else f"id {user_id}"
                # flatten's keys are lower-case already: SourceRecord directly,
                # not record(), which would lower-case them a second time.
                found[user_id] = SourceRecord(flatten(user), origin)

    def _pages(self, read: _Read, request: RequestInformation, what: str
               ) -> AsyncIterator[Page]:
        """graph.pages() through the read's pager: counted, told, failures translated."""
        return read.pager.each(read.graph.pages(request), what)
