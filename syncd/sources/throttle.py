"""How long a REST source may wait for a throttled or failing directory API.

Shared by the REST sources (Okta, Google). One `RetryBudget` per read: every
wait the read does (a provider's reset time, a Retry-After, a backoff) is
charged to it, and a wait that would go past `max_total_wait` is refused
instead of slept, so the run fails with a clear message rather than hanging.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


class BudgetExceeded(Exception):
    """The wait the provider asked for does not fit in what is left of the budget."""

    def __init__(self, asked: float, left: float, retries: int) -> None:
        super().__init__(f"asked to wait {asked:g}s with {left:g}s of the retry budget left")
        self.asked = asked
        self.left = left
        self.retries = retries


@dataclass(slots=True)
class RetryBudget:
    """Retries and total waiting for one read (not per request: a read of 500
    pages throttled on each must not wait 500 times the cap)."""

    max_retries: int
    max_total_wait: float
    base_delay: float = 1.0
    max_delay: float = 60.0
    waited: float = 0.0
    retries: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the `attempt`-th retry of a request (1-based)."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def charge(self, wait: float) -> float:
        """Accept a wait before a retry, or raise BudgetExceeded when it does not fit.

        Returns the wait (never negative). How many times one request may be
        retried is the caller's rule (the okta SDK counts its own).
        """
        wait = max(0.0, wait)
        left = max(0.0, self.max_total_wait - self.waited)
        if wait > left:
            raise BudgetExceeded(wait, left, self.retries)
        self.waited += wait
        self.retries += 1
        return wait
