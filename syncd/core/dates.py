"""Dates: everything syncd compares or sends is a calendar date in UTC.

A directory value with a UTC offset (`2026-01-31T23:30:00-05:00`, generalized
time `20260131233000-0500`) is converted to UTC before its date is taken, so
the same instant gives the same date whatever the server's zone. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
# Active Directory writes "never" as 0 or as the largest 64-bit integer.
_FILETIME_NEVER = {0, 0x7FFFFFFFFFFFFFFF}
_GENERALIZED = re.compile(r"^(\d{14})(?:[.,]\d+)?(Z|[+-]\d{4})?$")


def parse_date(value: str, fmt: str | None = None) -> date | None:
    """A directory's date -> date; None for AD's "never".

    Accepts ISO dates and date-times (`2026-01-31`, `2026-01-31T09:00:00Z`, Entra's
    employeeHireDate), LDAP generalized time (`20260131090000Z`, AD's whenCreated),
    AD FILETIME (100 ns ticks since 1601, accountExpires), or `fmt` (strptime).
    """
    text = value.strip()
    try:
        if fmt:
            return utc_date(datetime.strptime(text, fmt))
        if text.isdigit() and (len(text) >= 15 or text == "0"):
            ticks = int(text)
            if ticks in _FILETIME_NEVER:
                return None
            return (_FILETIME_EPOCH + timedelta(microseconds=ticks // 10)).date()
        if match := _GENERALIZED.match(text):
            moment = datetime.strptime(match.group(1), "%Y%m%d%H%M%S")
            zone = match.group(2)
            if zone and zone != "Z":
                moment = datetime.strptime(match.group(1) + zone, "%Y%m%d%H%M%S%z")
            return utc_date(moment)
        if len(text) == 10:
            return date.fromisoformat(text)
        return utc_date(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        expected = f"a date in the form {fmt!r}" if fmt else (
            "an ISO date such as 2026-01-31, generalized time or AD FILETIME")
        raise ValueError(f"{value!r} is not {expected}") from None


def parse_wire_date(value: str) -> date:
    """A date as Nebuly returns it: `2026-01-31`, or a date-time (converted to UTC).
    Raises ValueError for anything else."""
    if len(value) == 10:
        return date.fromisoformat(value)
    return utc_date(datetime.fromisoformat(value.replace("Z", "+00:00")))


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of `moment`; a moment without an offset is taken as UTC
    (never as the local zone of whatever machine syncd runs on)."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()
