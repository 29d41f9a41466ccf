"""The one id rule: how an `end_user` is normalised, and the key ids are matched on.

Nebuly does not document whether ids are case-sensitive. syncd compares them
case-insensitively everywhere (sources, merge, planner, approve, rollback): all
of them call `id_key`, nothing re-derives it.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class IdCase(StrEnum):
    """How `end_user` ids are normalised before they are compared or sent.

    Nebuly does not document whether ids are case-sensitive; lower-casing by
    default means `Ann@X.com` and `ann@x.com` never become two users.
    """

    LOWER = "lower"
    PRESERVE = "preserve"


def normalise_id(raw: str, case: IdCase = IdCase.LOWER) -> str:
    """Trim, NFC-normalise and (by default) lower-case an id."""
    value = raw.strip()
    # ASCII is already NFC: skip the (costly) normalisation for the common case.
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    elif case is IdCase.LOWER and value.islower():
        # Already lower-case: the same string, not a copy (a million ids a large run).
        return value
    return value.lower() if case is IdCase.LOWER else value


def id_key(end_user: str) -> str:
    """Key used to match ids regardless of case (even with IdCase.PRESERVE)."""
    value = end_user.strip()
    # ASCII is already NFC, and this runs on millions of ids per large run; an id
    # already in lower case is its own key (the same string, not a copy).
    if value.isascii():
        return value if value.islower() else value.lower()
    # lower(), not casefold(): casefold makes straße@x.de and strasse@x.de one
    # key, though they are two mailboxes and two people.
    return unicodedata.normalize("NFC", value).lower()


def exclusion_pattern(pattern: str) -> re.Pattern[str]:
    """An `exclude_ids` pattern, matched case-insensitively like every id comparison:
    `^SVC-` excludes `svc-backup@x` whether or not ids are lower-cased."""
    return re.compile(pattern, re.IGNORECASE)
