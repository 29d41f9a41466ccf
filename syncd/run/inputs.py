"""What a run starts from: the config's policy for the core, the sources read and
merged into one desired roster, and a Nebuly client configured from the config."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import httpx

from syncd.config.model import SyncdConfig
from syncd.core.mapping import MappedSource, SourceMapper
from syncd.core.merge import MergedRoster, cap_tag_values, merge
from syncd.core.model import RecordProblem, SourceRecord
from syncd.core.plan import Missing
from syncd.core.policy import GuardedPlan, decide
from syncd.core.rules import Departed, Mode, PlanPolicy
from syncd.core.templates import MappingRules, template_attributes, unknown_attributes
from syncd.nebuly.client import NebulyClient, Roster
from syncd.nebuly.retry import RetryPolicy
from syncd.run.progress import LOG_EVERY, read_watched
from syncd.run.report import SourceStats
from syncd.sources.base import Source, SourceError

# Per-record problems beyond this many per source are counted, not logged one by one.
MAX_LOGGED_PROBLEMS = 50


def plan_policy(config: SyncdConfig) -> PlanPolicy:
    managed = frozenset(k for s in config.sources for k in s.tags)
    policy = config.policy
    owner = policy.owner_tag
    return PlanPolicy(
        mode=Mode(policy.mode),
        departed=Departed(policy.departed),
        managed_tag_keys=managed | ({owner.key} if owner else frozenset()),
        prune_tags=policy.prune_tags,
        owner_tag=(owner.key, owner.value) if owner else None,
        grace_runs=policy.grace_runs,
        # Dates are whole days; round a grace period up so "36h" means 2 days, not 1.
        grace_days=-int(-(policy.grace_period or 0) // 86400),
    )


def _read_sources(config: SyncdConfig, sources: Sequence[Source],
                  logger: Any, clock: Callable[[], float], progress_every: float
                  ) -> tuple[list[MappedSource], list[SourceStats]]:
    mapped: list[MappedSource] = []
    stats: list[SourceStats] = []
    for source_config, source in zip(config.sources, sources, strict=True):
        start = clock()
        read = read_watched(source, logger, clock, progress_every)  # raises SourceError
        result = SourceMapper(source_config, config.policy.id_case).map(read.records,
                                                                        read.problems)
        seconds = clock() - start
        problems = [*read.problems, *result.problems]
        _log_skipped(logger, source.name, problems)
        for notice in result.notices[:MAX_LOGGED_PROBLEMS]:
            logger.warning("record.adjusted", source=source.name, record=notice.origin,
                           reason=notice.message)
        if read.records and (unseen := _never_seen(source_config, read.records)):
            # Most likely a typo in a template: loud, because every user would lose
            # that tag (the tag-removal cap holds the updates back).
            logger.warning("source.attribute_never_seen", source=source.name, fields=unseen,
                           detail="no record of this source has a value for these "
                           "attributes; check the spelling in the templates")
        if not result.users and not source_config.allow_empty:
            raise SourceError(source.name, (
                f"read {len(read.records)} records but yielded no users; refusing to treat "
                "everyone as departed. Check the source, or set allow_empty: true"))
        stats.append(SourceStats(source.name, len(read.records), len(result.users),
                                 len(problems), result.excluded, seconds))
        logger.info("source.read", source=source.name, records=len(read.records),
                    users=len(result.users), skipped=len(problems), excluded=result.excluded,
                    duration_s=round(seconds, 3))
        mapped.append(result)
    return mapped, stats


def _log_skipped(logger: Any, source: str, problems: Sequence[RecordProblem]) -> None:
    """One line per distinct reason: the same mistake on every row (a wrong delimiter,
    a column absent from the export) is one line with a count, not fifty."""
    by_reason: dict[str, list[str]] = {}
    for problem in problems:
        by_reason.setdefault(problem.message, []).append(problem.origin)
    reasons = list(by_reason.items())
    for reason, origins in reasons[:MAX_LOGGED_PROBLEMS]:
        extra = {"count": len(origins), "last": origins[-1]} if len(origins) > 1 else {}
        logger.warning("record.skipped", source=source, record=origins[0], reason=reason,
                       **extra)
    if len(reasons) > MAX_LOGGED_PROBLEMS:
        logger.warning("record.skipped_more", source=source,
                       count=sum(len(o) for _, o in reasons[MAX_LOGGED_PROBLEMS:]))


def read_desired(config: SyncdConfig, sources: Sequence[Source], logger: Any,
                 clock: Callable[[], float] = time.perf_counter, *,
                 progress_every: float = LOG_EVERY) -> tuple[MergedRoster, list[SourceStats]]:
    """Read every source completely, map and merge: who should have access. Raises SourceError.
    A long read logs `source.progress` every `progress_every` seconds of `clock`."""
    mapped, stats = _read_sources(config, sources, logger, clock, progress_every)
    merged = merge(mapped, config.policy.source_precedence)
    for key, tag, values in merged.conflicts[:MAX_LOGGED_PROBLEMS]:
        logger.debug("merge.conflict", end_user=key, tag=tag, values=dict(values))
    merged, capped = cap_tag_values(merged, config.sources)
    for cap in capped:
        logger.warning("tags.capped", tag=cap.tag, kept=list(cap.kept),
                       replaced=list(cap.replaced[:20]), users=cap.users)
    return merged, stats


def decide_run(config: SyncdConfig, merged: MergedRoster, roster: Roster, today: date,
               missing: Mapping[str, Missing], *, force: bool) -> GuardedPlan:
    """The core's plan for a run (and for `syncd explain`): one call, so both agree.
    People whose record was unreadable (in a source or in Nebuly's list) exist:
    never insert, overwrite or deactivate them on the strength of a bad read."""
    return decide(merged.users, roster.users, plan_policy(config), today,
                  cap=config.policy.max_deactivations,
                  max_tag_removals=config.policy.max_tag_removals, force=force,
                  protected=merged.protected_ids | roster.unusable_ids, missing=missing)


def nebuly_client(config: SyncdConfig, http: httpx.Client, *,
                  sleep: Callable[[float], None] = time.sleep,
                  should_stop: Callable[[], bool] = lambda: False) -> NebulyClient:
    return NebulyClient(
        http, api=config.nebuly.api, batch_size=config.nebuly.batch_size,
        retry=RetryPolicy(max_retries=config.nebuly.max_retries,
                          max_total_wait=config.nebuly.max_retry_wait),
        sleep=sleep, should_stop=should_stop)


def _never_seen(config: MappingRules, records: Sequence[SourceRecord]) -> list[str]:
    """Template fields naming an attribute that no record carries (a CSV source has
    already refused such a template against its header)."""
    names = template_attributes(config)
    seen = {name for name in names if any(r.attributes.get(name) for r in records)}
    return unknown_attributes(config, seen) if seen != names else []
