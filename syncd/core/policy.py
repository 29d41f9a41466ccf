"""The policy: filters over the one set of changes the planner computed.

The planner (plan.py) says everything that differs between the sources and
Nebuly. The policy decides what of it a run may do, as external-dns's
plan/policy.go does: the mode drops what it never allows, the cap blocks only
the destructive part. Every intent (a run, approve, a fast path) gets its plan
from `decide`, so none of them can disagree on a rule.

Peers' users were bitten by thresholds that also blocked creates (user-sync
#744) and by shrunken reads that deprovisioned everyone (ssosync #194): so a
trip removes deactivations and deletes and lets inserts and updates go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from syncd.core.model import DesiredUser, NebulyUser
from syncd.core.plan import Missing, Plan, plan
from syncd.core.rules import Limit, Mode, PlanPolicy


@dataclass(frozen=True, slots=True)
class GuardTrip:
    guard: str
    message: str
    blocked: int


@dataclass(frozen=True, slots=True)
class GuardedPlan:
    allowed: Plan
    blocked: Plan
    trips: tuple[GuardTrip, ...]
    # Everything the mode allows, before the cap: allowed and blocked together.
    planned: Plan = field(default_factory=Plan)


def decide(
    desired: Mapping[str, DesiredUser],
    actual: Iterable[NebulyUser],
    policy: PlanPolicy,
    today: date,
    *,
    cap: Limit,
    force: bool = False,
    protected: frozenset[str] = frozenset(),
    missing: Mapping[str, Missing] | None = None,
) -> GuardedPlan:
    """The changes a run makes (`allowed`) and those a guard holds back (`blocked`)."""
    computed = plan(desired, actual, policy, today, protected, missing)
    return check(by_mode(computed, policy.mode), cap, force=force)


def by_mode(computed: Plan, mode: Mode) -> Plan:
    """Drop what the mode never allows; what is dropped counts as unchanged."""
    if mode == Mode.SYNC:
        return computed
    if mode == Mode.UPSERT_ONLY:
        kept = replace(computed, deactivations=(), deletes=(), waiting=())
    else:  # create-only
        kept = Plan(inserts=computed.inserts, managed_active=computed.managed_active,
                    foreign=computed.foreign, duplicate_ids=computed.duplicate_ids)
    dropped = _size(computed) - _size(kept)
    return replace(kept, unchanged=computed.unchanged + dropped)


def _size(p: Plan) -> int:
    return (len(p.updates) + len(p.reactivations) + len(p.deactivations) + len(p.deletes)
            + len(p.inserts))


def check(computed: Plan, max_deactivations: Limit, force: bool = False) -> GuardedPlan:
    """The deactivation cap: over it, every deactivation and delete is held back."""
    destructive = computed.destructive
    ceiling = max_deactivations.ceiling(computed.managed_active)
    if force or destructive <= ceiling:
        return GuardedPlan(computed, Plan(), (), computed)
    trip = GuardTrip(
        guard="max_deactivations",
        message=(
            f"{destructive} deactivations/deletes planned, over the cap of {ceiling} "
            f"(policy.max_deactivations {max_deactivations} of {computed.managed_active} "
            "managed active users); none were applied. If the departures are real, "
            "run once with --force or raise the cap."
        ),
        blocked=destructive,
    )
    return GuardedPlan(without_destructive(computed), only_destructive(computed), (trip,),
                       computed)


def without_destructive(computed: Plan) -> Plan:
    """The same plan with its deactivations and deletes removed."""
    return replace(computed, deactivations=(), deletes=())


def only_destructive(computed: Plan) -> Plan:
    return Plan(deactivations=computed.deactivations, deletes=computed.deletes,
                managed_active=computed.managed_active)
