"""The Okta source: users of an org, of an app's assignments, or of some groups.

`read()` is synchronous like every source: one `asyncio.run` builds the SDK's
request executor and an aiohttp session, pages through Okta to the end and
closes both. Any failure raises SourceError, so the run aborts before writing
("could not read" never becomes "user left").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from syncd.core.templates import template_attributes
from syncd.log import register_secret_lines
from syncd.sources.base import (
    NO_PROGRESS,
    ReadProgress,
    RecordProblem,
    SourceError,
    SourceRead,
    SourceRecord,
)
from syncd.sources.okta.config import OktaCredentialKind, OktaSourceConfig
from syncd.sources.paths import path_tree, pick
from syncd.sources.throttle import RetryBudget

if TYPE_CHECKING:
    from syncd.sources.okta.client import OktaSession

log = structlog.get_logger(__name__)

# Okta's page-size ceilings per endpoint.
USERS_MAX, APP_USERS_MAX, GROUP_USERS_MAX = 200, 500, 1000
# Always read: the id (de-duplication), the status (eligibility) and the
# login (the record's origin for admins).
ALWAYS = ("id", "status", "profile.login")


@dataclass(slots=True)
class _Tally:
    pages: int = 0
    seen: int = 0
    ineligible: int = 0
    problems: list[RecordProblem] = field(default_factory=list)


class OktaSource:
    """Reads the people of an Okta org who have access (by status, app or group)."""

    def __init__(self, config: OktaSourceConfig) -> None:
        self.config = config
        self.statuses = frozenset(str(s) for s in config.statuses)
        # Only what the templates name is taken from each user object.
        self.paths = path_tree({*ALWAYS, *template_attributes(config)})

    @property
    def name(self) -> str:
        return self.config.name

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        # The result travels in `box`: asyncio.run() on 3.11 formats repr(task
        # result) when it restores the SIGINT handler (every record, slowly).
        box: list[SourceRead] = []
        asyncio.run(self._read(box))
        return box[0]

    def _secrets(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Credential keyword arguments for the session, and the values to scrub."""
        config = self.config
        try:
            if config.credential_kind is OktaCredentialKind.API_TOKEN:
                token = config.resolve_api_token()
                found: dict[str, str] = {"api_token": token}
            else:
                found = {"private_key": config.read_private_key()}
        except ValueError as exc:
            raise SourceError(self.name, f"cannot set up the credential: {exc}") from None
        values = tuple(found.values())
        for value in values:
            register_secret_lines(value)  # masked in any log event, as a second line of defence
        return found, values

    async def _read(self, box: list[SourceRead]) -> None:
        try:
            from syncd.sources.okta.client import OktaSession
            from syncd.sources.okta.errors import translate
        except ImportError as exc:
            raise SourceError(self.name, (
                f"the Okta source needs the okta SDK ({exc.name} is missing): install "
                "syncd[okta]")) from None
        started = time.monotonic()
        credentials, secrets = self._secrets()
        config = self.config
        budget = RetryBudget(config.max_retries, config.max_retry_wait)
        tally = _Tally()
        try:
            async with OktaSession(config, budget, **credentials) as okta:
                records = await self._collect(okta, tally, secrets)
                requests = okta.requests
        except SourceError:
            raise
        except Exception as exc:  # setup or teardown; page errors are translated in _pages
            raise translate(exc, config, secrets, "Okta (session setup)") from None
        log.info("okta_read", source=self.name, users=len(records), pages=tally.pages,
                 requests=requests, skipped_status=tally.ineligible, retries=budget.retries,
                 waited_s=round(budget.waited, 3), problems=len(tally.problems),
                 seconds=round(time.monotonic() - started, 3))
        box.append(SourceRead(records, tuple(tally.problems)))

    async def _collect(self, okta: OktaSession, tally: _Tally,
                       secrets: Sequence[str]) -> list[SourceRecord]:
        config = self.config
        size = config.page_size
        found: dict[str, SourceRecord] = {}
        if config.app:
            what = f"users assigned to app {config.app}"
            params = {"limit": str(min(size, APP_USERS_MAX)), "expand": "user"}
            async for page in self._pages(okta, f"/api/v1/apps/{config.app}/users", params,
                                          what, tally, secrets):
                for assignment in page:
                    self._add_assignment(assignment, what, found, tally)
        for group in config.groups:
            what = f"members of group {group}"
            params = {"limit": str(min(size, GROUP_USERS_MAX))}
            async for page in self._pages(okta, f"/api/v1/groups/{group}/users", params, what,
                                          tally, secrets):
                for user in page:
                    self._add(user, {}, what, found, tally)
        if not config.app and not config.groups:
            params = {"limit": str(min(size, USERS_MAX))}
            async for page in self._pages(okta, "/api/v1/users", params, "users", tally,
                                          secrets):
                for user in page:
                    self._add(user, {}, "users", found, tally)
        return list(found.values())

    def _add_assignment(self, assignment: dict[str, Any], what: str,
                        found: dict[str, SourceRecord], tally: _Tally) -> None:
        embedded = assignment.get("_embedded")
        user = embedded.get("user") if isinstance(embedded, dict) else None
        if not isinstance(user, dict):
            # Without the user we cannot tell who it is: a silent skip would
            # deactivate them, so the whole read fails instead.
            raise SourceError(self.name, (
                f"reading {what}: Okta sent an assignment without its user (id "
                f"{assignment.get('id')}; expand=user was ignored); nothing was written"))
        extra = {}
        if isinstance(assignment.get("created"), str):
            extra["assigneddatetime"] = assignment["created"]
        if isinstance(assignment.get("scope"), str):
            extra["assignmentscope"] = assignment["scope"]
        self._add(user, extra, what, found, tally)

    def _add(self, user: dict[str, Any], extra: dict[str, str], what: str,
             found: dict[str, SourceRecord], tally: _Tally) -> None:
        tally.seen += 1
        user_id = user.get("id")
        if type(user_id) is not str or not user_id:
            tally.problems.append(RecordProblem(f"{what} page {tally.pages}",
                                                "a user without an id; skipped"))
            return
        if user.get("status") not in self.statuses:
            tally.ineligible += 1
            return
        if user_id in found:
            return  # assigned to the app and in a group, or in several groups
        attributes = pick(user, self.paths)
        attributes.update(extra)
        login = attributes.get("profile.login")
        origin = f"{login} (id {user_id})" if login else f"id {user_id}"
        found[user_id] = SourceRecord(attributes, origin)

    async def _pages(self, okta: OktaSession, path: str, params: dict[str, str], what: str,
                     tally: _Tally, secrets: Sequence[str],
                     ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """okta.pages(), with every failure turned into a SourceError naming the page."""
        from syncd.sources.okta.errors import translate

        page_no = 0
        pages = okta.pages(path, params)
        try:
            while True:
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise translate(exc, self.config, secrets,
                                    f"{what} (page {page_no + 1})") from None
                page_no += 1
                tally.pages += 1
                yield page
        finally:
            await pages.aclose()
