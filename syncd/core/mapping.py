"""Source records -> desired Nebuly users: templates, transforms, merge of several sources.

Pure: no I/O. Problems are returned, never raised, so one bad record never
stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from operator import itemgetter

from syncd.core.dates import parse_date
from syncd.core.ids import exclusion_pattern
from syncd.core.model import DesiredUser, IdCase, RecordProblem, SourceRecord, id_key, normalise_id
from syncd.core.rules import TagTemplate
from syncd.core.templates import MappingRules, Template, tag_template
from syncd.core.text import CONTROLS, escape_controls, strip_controls

MAX_ID_LENGTH = 512
# CONTROLS (C0, DEL, C1 and bidi formatting characters): refused in ids (`moc.live@nna` behind a
# right-to-left override displays as another address), stripped from tag values.


@dataclass(frozen=True, slots=True)
class MappedSource:
    """The desired users one source yields, and what was skipped."""

    source: str
    users: tuple[DesiredUser, ...]
    problems: tuple[RecordProblem, ...] = ()
    excluded: int = 0
    # Records kept but changed (a tag value cut to max_length, say).
    notices: tuple[RecordProblem, ...] = ()
    # Ids of records that were skipped for bad data although their id is known:
    # the person exists, so the planner must not deactivate them.
    protected_ids: frozenset[str] = frozenset()


# Memo and sharing tables are bounded: a free-text tag with a distinct value per
# person must not double the memory it was meant to save.
_MAX_MEMO = 1 << 16


class SourceMapper:
    """Maps one source's records with its templates; compile once, apply per record.

    A large directory repeats a few tag values (departments, regions) over and
    over: each distinct rendered value is transformed once, and users with the
    same tags share one (never mutated) tags dict.
    """

    def __init__(self, config: MappingRules, id_case: IdCase = IdCase.LOWER) -> None:
        self.config = config
        self.id_case = id_case
        self.end_user = Template.parse(config.end_user)
        self.tags = {key: (tag_template(s), Template.parse(tag_template(s).template))
                     for key, s in config.tags.items()}
        self.active_from = Template.parse(config.active_from) if config.active_from else None
        self.active_to = Template.parse(config.active_to) if config.active_to else None
        self.exclude = [exclusion_pattern(p) for p in config.exclude_ids]
        self._sources = (config.name,)
        # Per tag: (key, spec, template, the attribute of a one-placeholder template,
        # memo of raw attribute value -> final value for such templates).
        self._tag_plan: list[tuple[str, TagTemplate, Template, str | None, dict[str, str]]] = [
            (key, spec, template, template.single, {})
            for key, (spec, template) in self.tags.items()]
        self._shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        # When every tag has one placeholder, a person's tags are a function of those
        # raw attribute values together: one lookup per person instead of one per tag.
        singles = [single for _, _, _, single, _ in self._tag_plan]
        self._raw_values: Callable[[Mapping[str, str]], object] | None = (
            itemgetter(*singles) if singles and None not in singles else None)
        self._by_raw_values: dict[object, dict[str, str]] = {}

    def map(self, records: Iterable[SourceRecord],
            unreadable: Iterable[RecordProblem] = ()) -> MappedSource:
        """Map every record; `unreadable` are the source's own skipped records, whose
        ids (when what was read of them gives one) are protected."""
        users: dict[str, DesiredUser] = {}
        # The record kept for each user, to name it on a duplicate: a list in the order
        # of `users` (8 bytes a person), made a dict by key at the first duplicate.
        kept_origins: list[str] = []
        origin_of: dict[str, str] | None = None
        problems: list[RecordProblem] = []
        self._notices: list[RecordProblem] = []
        protected: set[str] = set()
        excluded = 0
        render_id = self.end_user.render
        exclude = self.exclude
        control = CONTROLS.search
        for rec in records:
            raw_id = render_id(rec.attributes)
            if raw_id is None:
                problems.append(RecordProblem(rec.origin, self._missing_id_message(rec)))
                continue
            end_user = normalise_id(raw_id, self.id_case)
            if (control(end_user) or len(end_user) > MAX_ID_LENGTH) and (
                    bad := _bad_id(end_user)):
                problems.append(RecordProblem(
                    rec.origin, f"id {escape_controls(end_user[:80])!r} {bad}; skipped"))
                continue
            if exclude and any(p.search(end_user) for p in exclude):
                excluded += 1
                continue
            key = id_key(end_user)
            try:
                user = self._user(end_user, rec)
            except ValueError as exc:
                problems.append(RecordProblem(rec.origin, f"{end_user}: {exc}; left unchanged"))
                protected.add(key)
                continue
            if key in users:
                # Sources hand records over in a stable order (LDAP: by DN), so the
                # record kept does not change from run to run.
                if origin_of is None:
                    origin_of = dict(zip(users, kept_origins, strict=True))
                problems.append(RecordProblem(
                    rec.origin, f"duplicate id {end_user!r} in source {self.config.name!r}; "
                    f"the first record ({origin_of[key]}) is kept"))
                continue
            users[key] = user
            if origin_of is None:
                kept_origins.append(rec.origin)
            else:
                origin_of[key] = rec.origin
        for problem in unreadable:
            if problem.attributes is not None:
                raw = render_id(problem.attributes)
                if raw is not None:
                    protected.add(id_key(normalise_id(raw, self.id_case)))
        return MappedSource(self.config.name, tuple(users.values()), tuple(problems),
                            excluded, tuple(self._notices), frozenset(protected - users.keys()))

    def _missing_id_message(self, rec: SourceRecord) -> str:
        missing = sorted(a for a in self.end_user.attributes
                         if not (rec.attributes.get(a) or "").strip())
        return (f"end_user template {self.config.end_user!r} is empty: attribute(s) "
                f"{', '.join(missing)} missing; record skipped")

    def _user(self, end_user: str, rec: SourceRecord) -> DesiredUser:
        attributes = rec.attributes
        raw_values: object = None
        if self._raw_values is not None:
            try:
                raw_values = self._raw_values(attributes)
            except KeyError:  # an attribute is missing: the tags take their defaults
                raw_values = None
            else:
                known_tags = self._by_raw_values.get(raw_values)
                if known_tags is not None:
                    return self._desired(end_user, known_tags, rec)
        tags, reusable = self._tags(end_user, rec)
        if raw_values is not None and reusable and len(self._by_raw_values) < _MAX_MEMO:
            self._by_raw_values[raw_values] = tags
        return self._desired(end_user, tags, rec)

    def _desired(self, end_user: str, tags: dict[str, str], rec: SourceRecord) -> DesiredUser:
        active_from = active_to = None
        if self.active_from is not None or self.active_to is not None:
            fmt = self.config.date_format
            active_from = _date_of(self.active_from, rec, "active_from", fmt)
            active_to = _date_of(self.active_to, rec, "active_to", fmt)
        # Positional: this runs once per person, and keywords cost measurably.
        return DesiredUser(end_user, tags, self._sources[0], active_from, active_to,
                           self._sources)

    def _tags(self, end_user: str, rec: SourceRecord) -> tuple[dict[str, str], bool]:
        """The person's tags, and False if a notice (a cut value) was issued for them."""
        tags: dict[str, str] = {}
        attributes = rec.attributes
        all_reusable = True
        for key, spec, template, single, memo in self._tag_plan:
            raw = None if single is None else attributes.get(single)
            if raw is not None:
                known = memo.get(raw)
                if known is not None:
                    if known:
                        tags[key] = known
                    continue
            value, reusable = self._tag_value(key, spec, template, end_user, rec)
            all_reusable = all_reusable and reusable
            if value:
                tags[key] = value
            # A one-placeholder tag is a function of the raw value alone, unless a
            # notice (a cut value) is due for this record.
            if raw is not None and reusable and len(memo) < _MAX_MEMO:
                memo[raw] = value
        if tags:
            signature = tuple(tags.items())
            shared = self._shared.get(signature)
            if shared is not None:
                tags = shared
            elif len(self._shared) < _MAX_MEMO:
                self._shared[signature] = tags
        return tags, all_reusable

    def _tag_value(self, key: str, spec: TagTemplate, template: Template, end_user: str,
                   rec: SourceRecord) -> tuple[str, bool]:
        """(the tag's value, "" for none; False if a notice was issued for this record)."""
        value = template.render(rec.attributes)
        if value is None:
            value = spec.default
        if value is None:
            return "", True
        value = _transform(value, spec)
        value = strip_controls(value)
        if spec.allow is not None and value not in spec.allow:
            value = spec.other
        if len(value) > spec.max_length:
            self._notices.append(RecordProblem(rec.origin, (
                f"{end_user}: tag {key!r} cut from {len(value)} to {spec.max_length} "
                "characters (tags.<key>.max_length)")))
            return value[:spec.max_length].rstrip(), False
        return value, True


def _bad_id(end_user: str) -> str | None:
    if CONTROLS.search(end_user):
        return "contains control characters (C0, C1 or bidirectional)"
    if len(end_user) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    return None


def _transform(value: str, spec: TagTemplate) -> str:
    if spec.transform == "lower":
        value = value.lower()
    elif spec.transform == "upper":
        value = value.upper()
    elif spec.transform == "strip":
        value = value.strip()
    return spec.map.get(value, value)


def _date_of(template: Template | None, rec: SourceRecord, name: str,
             fmt: str | None) -> date | None:
    if template is None:
        return None
    value = template.render(rec.attributes)
    if value is None:
        return None
    try:
        return parse_date(value, fmt)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
