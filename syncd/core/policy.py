"""Safety checks on a Plan. A tripped guard blocks only the destructive part.

Peers' users were bitten by thresholds that also blocked creates (user-sync
#744) and by shrunken reads that deprovisioned everyone (ssosync #194): so a
trip removes deactivations and deletes and lets inserts and updates go.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.core.plan import Plan, only_destructive, without_destructive
from syncd.core.rules import Limit


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


def check(plan: Plan, max_deactivations: Limit, force: bool = False) -> GuardedPlan:
    destructive = plan.destructive
    ceiling = max_deactivations.ceiling(plan.managed_active)
    if force or destructive <= ceiling:
        return GuardedPlan(plan, Plan(), ())
    trip = GuardTrip(
        guard="max_deactivations",
        message=(
            f"{destructive} deactivations/deletes planned, over the cap of {ceiling} "
            f"(policy.max_deactivations {max_deactivations} of {plan.managed_active} "
            "managed active users); none were applied. If the departures are real, "
            "run once with --force or raise the cap."
        ),
        blocked=destructive,
    )
    return GuardedPlan(without_destructive(plan), only_destructive(plan), (trip,))
