"""The Google Workspace source: users from the Admin SDK Directory API.

Scope: everyone in the customer (or domain), or the union of members of
`groups` (nested included) and users in `org_units` (and below). Suspended
and archived users are left out unless asked for. The users are always read
in full (users.list to the end) and the scope applied here: members.list
gives ids, not the attributes templates read. Any failure raises
SourceError, so the run aborts before writing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from syncd.core.templates import template_attributes
from syncd.sources.base import ReadProgress, RecordProblem, SourceError, SourceRecord
from syncd.sources.google.config import GoogleSourceConfig
from syncd.sources.jsonapi import JsonApiSource, Outcome, Page, Pager
from syncd.sources.paths import path_tree, pick
from syncd.sources.throttle import RetryBudget

# Always read: the id (de-duplication) and the primary email (the origin).
ALWAYS = ("id", "primaryEmail")


@dataclass(slots=True)
class _Tally:
    suspended: int = 0
    archived: int = 0
    out_of_scope: int = 0
    problems: list[RecordProblem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Who is in scope: everyone, or group members (by id) and org unit subtrees."""

    everyone: bool
    member_ids: frozenset[str] = frozenset()
    org_units: tuple[str, ...] = ()

    def contains(self, user: dict[str, Any]) -> bool:
        if self.everyone or user.get("id") in self.member_ids:
            return True
        path = user.get("orgUnitPath")
        if not isinstance(path, str):
            return False
        path = path.casefold()  # org unit names are matched as the Admin console does
        return any(unit in ("/", path) or path.startswith(unit + "/")
                   for unit in self.org_units)


class GoogleSource(JsonApiSource):
    """Reads the people of a Google Workspace account who have access."""

    event: ClassVar[str] = "google_read"

    def __init__(self, config: GoogleSourceConfig) -> None:
        super().__init__(config)
        self.config: GoogleSourceConfig = config
        # Only what the templates name is taken from each user resource.
        self.paths = path_tree({*ALWAYS, *template_attributes(config)})

    def _read(self, progress: ReadProgress) -> Outcome:
        from syncd.sources.google.auth import (
            CredentialSetupError,
            build_credentials,
            read_key_file,
            secrets_of,
        )
        from syncd.sources.google.directory import Directory
        from syncd.sources.google.errors import translate

        config = self.config
        try:
            info = read_key_file(config)
            secrets = secrets_of(info)
            credentials = build_credentials(config, info)
        except CredentialSetupError as exc:
            raise self.setup_failed(exc) from None

        def failed(exc: BaseException, what: str) -> SourceError:
            return translate(exc, config, secrets, what)

        budget = RetryBudget(config.max_retries, config.max_retry_wait)
        pager, tally = Pager(failed, progress), _Tally()
        try:
            directory = Directory(config, credentials, budget)
        except Exception as exc:
            raise failed(exc, "the Directory API (setup)") from None
        try:
            scope = self._scope(directory, pager)
            records = self._users(directory, scope, pager, tally)
        finally:
            directory.close()
        return Outcome(records, tally.problems, {
            "pages": pager.pages, "requests": directory.requests,
            "skipped_suspended": tally.suspended, "skipped_archived": tally.archived,
            "out_of_scope": tally.out_of_scope, "retries": budget.retries,
            "waited_s": round(budget.waited, 3),
        })

    def _scope(self, directory: Any, pager: Pager) -> _Scope:
        config = self.config
        if not config.groups and not config.org_units:
            return _Scope(everyone=True)
        ids: set[str] = set()
        for group in config.groups:
            pages: Iterator[Page] = directory.members(group)
            for page in pager.each_sync(pages, f"members of group {group}"):
                for member in page:
                    if member.get("type") == "CUSTOMER":
                        return _Scope(everyone=True)  # "all users in the organisation"
                    if member.get("type") == "USER" and isinstance(member.get("id"), str):
                        ids.add(member["id"])
        units = tuple(unit.casefold() for unit in config.org_units)
        return _Scope(everyone=False, member_ids=frozenset(ids), org_units=units)

    def _users(self, directory: Any, scope: _Scope, pager: Pager,
               tally: _Tally) -> list[SourceRecord]:
        config = self.config
        found: dict[str, SourceRecord] = {}
        for page in pager.each_sync(directory.users(), "users"):
            for user in page:
                user_id = user.get("id")
                if type(user_id) is not str or not user_id:
                    tally.problems.append(RecordProblem(pager.where("users"),
                                                        "a user without an id; skipped"))
                    continue
                if user.get("suspended") is True and not config.include_suspended:
                    tally.suspended += 1
                    continue
                if user.get("archived") is True and not config.include_archived:
                    tally.archived += 1
                    continue
                if not scope.contains(user):
                    tally.out_of_scope += 1
                    continue
                email = user.get("primaryEmail")
                origin = f"{email} (id {user_id})" if email else f"id {user_id}"
                found[user_id] = SourceRecord(pick(user, self.paths), origin)
        return list(found.values())
