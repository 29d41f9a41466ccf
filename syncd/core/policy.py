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

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from syncd.core.model import Change, DesiredUser, NebulyUser
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
    max_tag_removals: Limit | None = None,
    force: bool = False,
    protected: frozenset[str] = frozenset(),
    missing: Mapping[str, Missing] | None = None,
) -> GuardedPlan:
    """The changes a run makes (`allowed`) and those a guard holds back (`blocked`)."""
    computed = plan(desired, actual, policy, today, protected, missing)
    return check(by_mode(computed, policy.mode), cap, force=force,
                 max_tag_removals=max_tag_removals, mapped=mapped_keys(policy))


def mapped_keys(policy: PlanPolicy) -> frozenset[str]:
    """The tag keys the sources map (the owner stamp is syncd's own, not a mapped value)."""
    owner = {policy.owner_tag[0]} if policy.owner_tag else set()
    return policy.managed_tag_keys - owner


def removed_tags(change: Change, mapped: frozenset[str]) -> tuple[str, ...]:
    """Mapped tags the change takes away (a value that changes is not a removal)."""
    before, after = change.before.tags, change.after.tags
    return tuple(sorted(k for k in mapped if before.get(k) and not after.get(k)))


def by_mode(computed: Plan, mode: Mode) -> Plan:
    """Drop what the mode never allows; what is dropped counts as unchanged."""
    if mode == Mode.SYNC:
        return computed
    if mode == Mode.UPSERT_ONLY:
        kept = replace(computed, deactivations=(), deletes=(), waiting=())
    else:  # create-only
        kept = Plan(inserts=computed.inserts, managed_active=computed.managed_active,
                    foreign=computed.foreign, duplicate_ids=computed.duplicate_ids)
    dropped = computed.size - kept.size
    return replace(kept, unchanged=computed.unchanged + dropped)


def check(computed: Plan, max_deactivations: Limit, force: bool = False,
          max_tag_removals: Limit | None = None,
          mapped: frozenset[str] = frozenset()) -> GuardedPlan:
    """The guards: over a cap, that part of the plan is held back for approval.

    max_deactivations: every deactivation and delete. max_tag_removals: every
    update that takes a mapped tag's value away (a template typo would otherwise
    wipe a tag from everyone with exit 0).
    """
    if force:
        return GuardedPlan(computed, Plan(), (), computed)
    trips: list[GuardTrip] = []
    allowed, blocked = computed, Plan(managed_active=computed.managed_active)
    destructive = computed.destructive
    ceiling = max_deactivations.ceiling(computed.managed_active)
    if destructive > ceiling:
        trips.append(GuardTrip("max_deactivations", (
            f"{destructive} deactivations/deletes planned, over the cap of {ceiling} "
            f"(policy.max_deactivations {max_deactivations} of {computed.managed_active} "
            "managed active users); none were applied. If the departures are real, "
            "run once with --force or raise the cap."), destructive))
        allowed = without_destructive(allowed)
        blocked = replace(blocked, deactivations=computed.deactivations,
                          deletes=computed.deletes)
    if max_tag_removals is not None:
        losing = [c for c in (*computed.updates, *computed.reactivations)
                  if removed_tags(c, mapped)]
        limit = max_tag_removals.ceiling(computed.managed_active)
        if len(losing) > limit:
            counts = Counter(k for c in losing for k in removed_tags(c, mapped))
            which = ", ".join(f"{k} ({n})" for k, n in sorted(counts.items()))
            trips.append(GuardTrip("max_tag_removals", (
                f"{len(losing)} users would lose a mapped tag's value ({which}), over the cap "
                f"of {limit} (policy.max_tag_removals {max_tag_removals} of "
                f"{computed.managed_active} managed active users); those updates were not "
                "applied. A template naming an attribute the records lack does this: check "
                "the tags with `syncd preview`, then approve the plan or run with --force "
                "if the removals are real."), len(losing)))
            held = {id(c) for c in losing}
            allowed = replace(
                allowed, updates=tuple(c for c in allowed.updates if id(c) not in held),
                reactivations=tuple(c for c in allowed.reactivations if id(c) not in held))
            blocked = replace(
                blocked, updates=tuple(c for c in computed.updates if id(c) in held),
                reactivations=tuple(c for c in computed.reactivations if id(c) in held))
    return GuardedPlan(allowed, blocked, tuple(trips), computed)


def without_destructive(computed: Plan) -> Plan:
    """The same plan with its deactivations and deletes removed."""
    return replace(computed, deactivations=(), deletes=())


