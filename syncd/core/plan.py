"""The planner: a pure function of (desired, actual, policy, today) -> Plan.

No I/O, no clock, no logging: everything it needs is an argument, so it can be
table-tested and property-tested (re-planning after applying a plan yields an
empty plan). Modelled on external-dns's plan/policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from syncd.core.model import Change, DesiredUser, NebulyUser, Tags, id_key
from syncd.core.rules import Departed, PlanPolicy


@dataclass(frozen=True, slots=True)
class Missing:
    """Since when, and for how many consecutive successful runs, a person has been missing."""

    first_missed: date
    runs: int


@dataclass(frozen=True, slots=True)
class Plan:
    inserts: tuple[NebulyUser, ...] = ()
    updates: tuple[Change, ...] = ()
    deactivations: tuple[Change, ...] = ()
    reactivations: tuple[Change, ...] = ()
    deletes: tuple[NebulyUser, ...] = ()
    unchanged: int = 0
    # Managed users currently active in Nebuly: the whole that percent caps refer to.
    managed_active: int = 0
    # Nebuly users left alone because they carry no owner tag but match a desired id.
    foreign: tuple[str, ...] = field(default=())
    # Nebuly holds several entries whose ids differ only in case; the extra ones are left alone.
    duplicate_ids: tuple[str, ...] = field(default=())
    # Missing people still inside the departure grace period.
    waiting: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not (self.inserts or self.updates or self.deactivations
                    or self.reactivations or self.deletes)

    @property
    def destructive(self) -> int:
        return len(self.deactivations) + len(self.deletes)

    @property
    def size(self) -> int:
        """How many users the plan changes."""
        return (len(self.inserts) + len(self.updates) + len(self.reactivations)
                + len(self.deactivations) + len(self.deletes))

    def counts(self) -> dict[str, int]:
        return {
            "insert": len(self.inserts),
            "update": len(self.updates),
            "deactivate": len(self.deactivations),
            "reactivate": len(self.reactivations),
            "delete": len(self.deletes),
            "unchanged": self.unchanged,
        }


def is_active(user: NebulyUser, today: date) -> bool:
    """Has access today, or will: no end, or an end still ahead. An empty access
    period (ended on the day it started: someone who left before starting) is
    never active, so such a person is not deactivated again run after run."""
    end = user.active_to
    if end is None:
        return True
    return end > today and (user.active_from is None or end > user.active_from)


def _owned(user: NebulyUser, policy: PlanPolicy) -> bool:
    owner = policy.owner_tag
    return owner is None or user.tags.get(owner[0]) == owner[1]


def index_roster(actual: Iterable[NebulyUser]) -> tuple[dict[str, NebulyUser], list[str]]:
    """Nebuly's roster by id_key, and the ids of the extra case variants it holds.

    Where Nebuly holds one person under ids that differ only in case, the entry
    already in normalised (lower-case) form is the one syncd manages, whatever
    the order of the list; every path (run, approve, rollback) uses this index."""
    index: dict[str, NebulyUser] = {}
    duplicates: list[str] = []
    for user in actual:
        key = id_key(user.end_user)
        held = index.get(key)
        if held is None:
            index[key] = user
            continue
        # Prefer the entry already in normalised (lower-case) form, then the
        # smallest id: the choice never depends on the order of Nebuly's list.
        kept, extra = (user, held) if _preference(user, key) < _preference(held, key) \
            else (held, user)
        index[key] = kept
        duplicates.append(extra.end_user)
    return index, duplicates


def _preference(user: NebulyUser, key: str) -> tuple[bool, str]:
    return (user.end_user != key, user.end_user)


def _desired_tags(
    desired: DesiredUser, current: Mapping[str, str], policy: PlanPolicy
) -> dict[str, str]:
    if policy.prune_tags:
        tags: dict[str, str] = {}
    else:
        tags = {k: v for k, v in current.items() if k not in policy.managed_tag_keys}
    tags.update(desired.tags)
    if policy.owner_tag is not None:
        tags[policy.owner_tag[0]] = policy.owner_tag[1]
    return tags


def _same_tags(desired: Tags, current: Tags, policy: PlanPolicy) -> bool:
    """True only if `_desired_tags(desired, current, policy)` would equal `current`.

    A cheap check for the common case (Nebuly holds exactly the mapped tags, plus
    the owner tag if any) that builds nothing; False means "compute the target".
    """
    owner = policy.owner_tag
    if owner is None:
        # The target is current's unmanaged tags overlaid with desired: if the two
        # dicts are equal, that is current again, pruned or not.
        return desired == current
    owner_key, owner_value = owner
    if current.get(owner_key) != owner_value:
        return False
    if len(current) != len(desired) + (owner_key not in desired):
        return False
    # current's keys are then exactly desired's plus the owner key.
    return all(current.get(k) == v for k, v in desired.items() if k != owner_key)


def _unchanged(desired: DesiredUser, current: NebulyUser, policy: PlanPolicy,
               today: date) -> bool:
    """True only if `_target(desired, current, ...)` would equal `current`."""
    return (desired.active_to == current.active_to
            and (desired.active_from or current.active_from or today) == current.active_from
            and _same_tags(desired.tags, current.tags, policy))


def _target(desired: DesiredUser, current: NebulyUser, policy: PlanPolicy,
            today: date) -> NebulyUser:
    return NebulyUser(
        # Update matches on end_user, so keep the id exactly as Nebuly holds it.
        end_user=current.end_user,
        tags=_desired_tags(desired, current.tags, policy),
        # active_from is set at insert and left alone unless a source maps it.
        active_from=(started := desired.active_from or current.active_from or today),
        active_to=_ending(started, desired.active_to),
    )


def _new_user(desired: DesiredUser, policy: PlanPolicy, today: date) -> NebulyUser:
    return NebulyUser(
        end_user=desired.end_user,
        tags=_desired_tags(desired, {}, policy),
        active_from=(started := desired.active_from or today),
        active_to=_ending(started, desired.active_to),
    )


def _ending(started: date, ended: date | None) -> date | None:
    """Access never ends before it starts: someone who leaves before their start
    date gets active_to = active_from (an empty period), not an earlier date."""
    return None if ended is None else max(started, ended)


def plan(
    desired: Mapping[str, DesiredUser],
    actual: Iterable[NebulyUser],
    policy: PlanPolicy,
    today: date,
    protected: frozenset[str] = frozenset(),
    missing: Mapping[str, Missing] | None = None,
) -> Plan:
    """Compute the minimal changes that make Nebuly's roster match `desired`.

    `desired` is keyed by `id_key(end_user)`. `protected` ids are people whose
    record (in a source, or in Nebuly's roster) was unreadable this run: they
    are neither inserted, updated nor deactivated.
    `missing` is the grace period's memory from earlier runs (see next_missing).
    """
    missing = missing or {}
    index, duplicates = index_roster(actual)
    inserts: list[NebulyUser] = []
    updates: list[Change] = []
    reactivations: list[Change] = []
    deactivations: list[Change] = []
    deletes: list[NebulyUser] = []
    foreign: list[str] = []
    waiting: list[str] = []
    unchanged = 0
    managed_active = 0

    for key, want in desired.items():
        current = index.get(key)
        if key in protected:
            unchanged += 1
            continue
        if current is None:
            inserts.append(_new_user(want, policy, today))
            continue
        if not _owned(current, policy):
            foreign.append(current.end_user)
            continue
        # Most people did not change: say so without building a target user.
        target = (None if _unchanged(want, current, policy, today)
                  else _target(want, current, policy, today))
        if target is None or target == current:
            unchanged += 1
        elif not is_active(current, today) and is_active(target, today):
            reactivations.append(Change(current, target))
        elif is_active(current, today) and not is_active(target, today):
            # A source-mapped end date in the past ends access: a deactivation,
            # so it counts against max_deactivations like any other.
            deactivations.append(Change(current, target))
        else:
            updates.append(Change(current, target))

    for key, current in index.items():
        if not _owned(current, policy):
            continue
        if is_active(current, today):
            managed_active += 1
        if key in desired:
            continue
        # Users already inactive are history: left as they are, in delete mode too.
        if key in protected or not is_active(current, today):
            unchanged += 1
            continue
        departure = _departure(current, missing.get(key), policy, today)
        if departure is None:
            waiting.append(current.end_user)
            unchanged += 1
        elif isinstance(departure, Change):
            deactivations.append(departure)
        else:
            deletes.append(departure)

    return Plan(
        inserts=tuple(inserts),
        updates=tuple(updates),
        deactivations=tuple(deactivations),
        reactivations=tuple(reactivations),
        deletes=tuple(deletes),
        unchanged=unchanged,
        managed_active=managed_active,
        foreign=tuple(foreign),
        duplicate_ids=tuple(duplicates),
        waiting=tuple(waiting),
    )


def _departure(current: NebulyUser, before: Missing | None, policy: PlanPolicy,
               today: date) -> Change | NebulyUser | None:
    """What to do about an active person absent from the sources: None while they
    are within the grace period, the user to delete, or their deactivation."""
    seen = _missing_now(before, today)
    if within_grace(seen, policy, today):
        return None
    if policy.departed == Departed.DELETE:
        return current
    # With a grace period, access ended when they were first missed.
    ended = seen.first_missed if policy.has_grace else today
    started = current.active_from or ended
    return Change(current, NebulyUser(current.end_user, current.tags, started,
                                      _ending(started, ended)))


def within_grace(seen: Missing, policy: PlanPolicy, today: date) -> bool:
    """Whether someone missing since `seen` is still in the grace period (kept active)."""
    return seen.runs < policy.grace_runs or (today - seen.first_missed).days < policy.grace_days


def _missing_now(before: Missing | None, today: date) -> Missing:
    return Missing(before.first_missed, before.runs + 1) if before else Missing(today, 1)


def next_missing(
    desired: Mapping[str, DesiredUser],
    actual: Iterable[NebulyUser],
    policy: PlanPolicy,
    today: date,
    before: Mapping[str, Missing],
    protected: frozenset[str] = frozenset(),
) -> dict[str, Missing]:
    """The grace period's memory after a successful run: every managed, active
    person absent from the sources, with the run they were first missed in counted."""
    after: dict[str, Missing] = {}
    for user in actual:
        key = id_key(user.end_user)
        if key in desired or key in protected or not is_active(user, today):
            continue
        if not _owned(user, policy):
            continue
        after[key] = _missing_now(before.get(key), today)
    return after
