"""Several sources -> one desired roster: one user per id, tag precedence, value caps.

Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syncd.core.mapping import MappedSource
from syncd.core.model import DesiredUser, id_key
from syncd.core.rules import TagTemplate
from syncd.core.templates import MappingRules, tag_template


@dataclass(frozen=True, slots=True)
class MergedRoster:
    """Desired users from every source, one per id."""

    users: Mapping[str, DesiredUser]  # keyed by id_key(end_user)
    # People some source could not read: their Nebuly record is left exactly as it is.
    protected_ids: frozenset[str] = frozenset()
    # (id, tag key, values by source) for tags that sources disagree on.
    conflicts: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = field(default=())


def merge(mapped: Sequence[MappedSource], precedence: Sequence[str] | None = None) -> MergedRoster:
    """One user per id; for each tag the first source in precedence order that has it wins."""
    order = list(precedence) if precedence else [m.source for m in mapped]
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(mapped, key=lambda m: rank.get(m.source, len(rank)))
    merged: dict[str, DesiredUser] = {}
    # Only people found in several sources can have conflicting tags.
    shared_keys: set[str] = set()
    for source in ordered:
        for user in source.users:
            key = id_key(user.end_user)
            first = merged.get(key)
            if first is None:
                merged[key] = user
                continue
            shared_keys.add(key)
            merged[key] = DesiredUser(
                end_user=first.end_user,
                tags={**user.tags, **first.tags},
                source=first.source,
                active_from=first.active_from or user.active_from,
                active_to=first.active_to or user.active_to,
                sources=(*first.sources, source.source),
            )
    conflicts = _conflicts(ordered, shared_keys) if shared_keys else []
    protected = frozenset().union(*(m.protected_ids for m in mapped)) if mapped else frozenset()
    # A person unreadable in any source is protected, even if another source reads
    # him fine: changing him on half the data would drop what the other source maps.
    return MergedRoster(merged, protected, tuple(conflicts))


def _conflicts(ordered: Sequence[MappedSource], keys: set[str]
               ) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(id, tag, values by source) for each tag of `keys` that sources disagree on,
    in order of first appearance."""
    seen_values: dict[tuple[str, str], dict[str, str]] = {}
    for source in ordered:
        for user in source.users:
            key = id_key(user.end_user)
            if key not in keys:
                continue
            for tag, value in user.tags.items():
                seen_values.setdefault((key, tag), {})[source.source] = value
    return [(key, tag, tuple(values.items())) for (key, tag), values in seen_values.items()
            if len(set(values.values())) > 1]


@dataclass(frozen=True, slots=True)
class CappedTag:
    tag: str
    kept: tuple[str, ...]
    replaced: tuple[str, ...]  # values that became `other`
    users: int  # users whose value was replaced


def cap_tag_values(roster: MergedRoster,
                   sources: Sequence[MappingRules]) -> tuple[MergedRoster, list[CappedTag]]:
    """Keep at most `max_values` distinct values per tag across the roster.

    The most common values keep their name (ties broken alphabetically, so the
    result is stable run to run); the rest become the tag's `other` value.
    """
    caps: dict[str, TagTemplate] = {}
    for source in sources:
        for key, raw in source.tags.items():
            spec = tag_template(raw)
            if spec.max_values is not None and key not in caps:
                caps[key] = spec
    if not caps:
        return roster, []
    reports: list[CappedTag] = []
    replace: dict[str, tuple[set[str], str]] = {}
    for key, spec in caps.items():
        counts = Counter(u.tags[key] for u in roster.users.values() if key in u.tags)
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        assert spec.max_values is not None
        # `other` itself takes a slot when anything is replaced.
        keep = ranked if len(ranked) <= spec.max_values else ranked[:spec.max_values - 1]
        dropped = set(ranked) - set(keep)
        if dropped:
            replace[key] = (dropped, spec.other)
            reports.append(CappedTag(key, tuple(keep), tuple(sorted(dropped)),
                                     sum(counts[v] for v in dropped)))
    if not replace:
        return roster, []
    users = {}
    for uid, user in roster.users.items():
        hit = {k: other for k, (dropped, other) in replace.items() if user.tags.get(k) in dropped}
        users[uid] = replace_tags(user, {**user.tags, **hit}) if hit else user
    return MergedRoster(users, roster.protected_ids, roster.conflicts), reports


def replace_tags(user: DesiredUser, tags: Mapping[str, str]) -> DesiredUser:
    return DesiredUser(user.end_user, tags, user.source, user.active_from, user.active_to,
                       user.sources)
