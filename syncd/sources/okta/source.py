"""The Okta source: users of an org, of an app's assignments, or of some groups.

`read()` is synchronous like every source (the frame is syncd/sources/jsonapi.py):
one event loop builds the SDK's request executor and an aiohttp session, pages
through Okta to the end and closes both. Any failure raises SourceError, so
the run aborts before writing ("could not read" never becomes "user left").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from syncd.core.templates import template_attributes
from syncd.log import register_secret_lines
from syncd.sources.base import ReadProgress, RecordProblem, SourceError, SourceRecord
from syncd.sources.jsonapi import AsyncJsonApiSource, Outcome, Page, Pager
from syncd.sources.okta.config import OktaCredentialKind, OktaSourceConfig
from syncd.sources.paths import path_tree, pick
from syncd.sources.throttle import RetryBudget

if TYPE_CHECKING:
    from syncd.sources.okta.client import OktaSession

# Okta's page-size ceilings per endpoint.
USERS_MAX, APP_USERS_MAX, GROUP_USERS_MAX = 200, 500, 1000
# Always read: the id (de-duplication), the status (eligibility) and the
# login (the record's origin for admins).
ALWAYS = ("id", "status", "profile.login")


@dataclass(slots=True)
class _Tally:
    pager: Pager  # counts the pages: a problem names the page it was found on
    ineligible: int = 0
    problems: list[RecordProblem] = field(default_factory=list)


class OktaSource(AsyncJsonApiSource):
    """Reads the people of an Okta org who have access (by status, app or group)."""

    event: ClassVar[str] = "okta_read"

    def __init__(self, config: OktaSourceConfig) -> None:
        super().__init__(config)
        self.config: OktaSourceConfig = config
        self.statuses = frozenset(str(s) for s in config.statuses)
        # Only what the templates name is taken from each user object.
        self.paths = path_tree({*ALWAYS, *template_attributes(config)})

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
            raise self.setup_failed(exc) from None
        values = tuple(found.values())
        for value in values:
            register_secret_lines(value)  # masked in any log event, as a second line of defence
        return found, values

    async def _read_async(self, progress: ReadProgress) -> Outcome:
        from syncd.sources.okta.client import OktaSession
        from syncd.sources.okta.errors import translate

        credentials, secrets = self._secrets()
        config = self.config
        budget = RetryBudget(config.max_retries, config.max_retry_wait)

        def failed(exc: BaseException, what: str) -> SourceError:
            return translate(exc, config, secrets, what)

        pager = Pager(failed, progress)
        tally = _Tally(pager)
        try:
            async with OktaSession(config, budget, **credentials) as okta:
                records = await self._collect(okta, pager, tally)
                requests = okta.requests
        except SourceError:
            raise
        except Exception as exc:  # setup or teardown; page errors are translated by the pager
            raise failed(exc, "Okta (session setup)") from None
        return Outcome(records, tally.problems, {
            "pages": pager.pages, "requests": requests, "skipped_status": tally.ineligible,
            "retries": budget.retries, "waited_s": round(budget.waited, 3),
        })

    async def _collect(self, okta: OktaSession, pager: Pager,
                       tally: _Tally) -> list[SourceRecord]:
        config = self.config
        size = config.page_size
        found: dict[str, SourceRecord] = {}

        def pages(path: str, params: dict[str, str], what: str) -> AsyncIterator[Page]:
            return pager.each(okta.pages(path, params), what)

        if config.app:
            what = f"users assigned to app {config.app}"
            params = {"limit": str(min(size, APP_USERS_MAX)), "expand": "user"}
            async for page in pages(f"/api/v1/apps/{config.app}/users", params, what):
                for assignment in page:
                    self._add_assignment(assignment, what, found, tally)
        for group in config.groups:
            what = f"members of group {group}"
            params = {"limit": str(min(size, GROUP_USERS_MAX))}
            async for page in pages(f"/api/v1/groups/{group}/users", params, what):
                for user in page:
                    self._add(user, {}, what, found, tally)
        if not config.app and not config.groups:
            params = {"limit": str(min(size, USERS_MAX))}
            async for page in pages("/api/v1/users", params, "users"):
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
        user_id = user.get("id")
        if type(user_id) is not str or not user_id:
            tally.problems.append(RecordProblem(tally.pager.where(what),
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
