"""`{attribute}` templates, the tag rules built on them, and their config-time check.

Pure: no I/O.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncd.core.rules import TagSpec, TagTemplate


class MappingRules(Protocol):
    """What the core needs of a source's config: its templates and id rules.
    (Every source config satisfies it; the core never imports the config.)"""

    @property
    def name(self) -> str: ...
    @property
    def end_user(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, TagSpec]: ...
    @property
    def active_from(self) -> str | None: ...
    @property
    def active_to(self) -> str | None: ...
    @property
    def date_format(self) -> str | None: ...
    @property
    def exclude_ids(self) -> Sequence[str]: ...


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed `{attribute}` template. `{{` and `}}` are literal braces."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, attribute or None)
    # The attribute of a template that is exactly one placeholder ("{mail}"), the
    # common case, rendered without building a list.
    single: str | None = None

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[tuple[str, str | None]] = []
        try:
            for literal, name, spec, conversion in string.Formatter().parse(text):
                if name is not None and (spec or conversion):
                    raise TemplateError(f"{text!r}: write {{{name}}} without ':' or '!'")
                if name == "":
                    raise TemplateError(f"{text!r}: empty {{}} placeholder; name an attribute")
                parts.append((literal, name.lower() if name is not None else None))
        except ValueError as exc:
            if isinstance(exc, TemplateError):
                raise
            raise TemplateError(f"{text!r}: {exc}") from None
        single = parts[0][1] if len(parts) == 1 and not parts[0][0] else None
        return cls(text, tuple(parts), single)

    @property
    def attributes(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name is not None)

    def render(self, attributes: Mapping[str, str]) -> str | None:
        """The rendered value, or None when an attribute it names is missing or blank."""
        if self.single is not None:
            value = attributes.get(self.single)
            if value is None:
                return None
            value = value.strip()
            return value or None
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                value = attributes.get(name)
                if value is None or not value.strip():
                    return None
                out.append(value.strip())
        return "".join(out)


def tag_template(spec: TagSpec) -> TagTemplate:
    return spec if isinstance(spec, TagTemplate) else TagTemplate(template=spec)


def template_attributes(config: MappingRules) -> frozenset[str]:
    """Every (lower-case) attribute the source's templates read: what to request."""
    texts = [config.end_user, *(tag_template(s).template for s in config.tags.values())]
    texts += [t for t in (config.active_from, config.active_to) if t]
    names: set[str] = set()
    for text in texts:
        names |= Template.parse(text).attributes
    return frozenset(names)


def template_fields(config: MappingRules) -> dict[str, str]:
    """Every template of a source by its key in the config (`tags.department`, ...)."""
    fields = {"end_user": config.end_user}
    fields |= {f"tags.{k}": tag_template(v).template for k, v in config.tags.items()}
    fields |= {name: text for name, text in (("active_from", config.active_from),
                                             ("active_to", config.active_to)) if text}
    return fields


def template_problems(sources: Sequence[MappingRules]) -> list[str]:
    """Config-time check of every template of every source: one line per problem,
    named by its path in the config (`sources[0].tags.department: ...`)."""
    problems = []
    for i, config in enumerate(sources):
        for path, text in template_fields(config).items():
            try:
                Template.parse(text)
            except TemplateError as exc:
                problems.append(f"sources[{i}].{path}: {exc}")
    return problems


def unknown_attributes(config: MappingRules, known: Iterable[str]) -> list[str]:
    """One line per template naming an attribute outside `known` (a CSV header, say):
    `tags.department: {dept} is not a column`."""
    names = set(known)
    lines = []
    for path, text in template_fields(config).items():
        try:
            missing = sorted(Template.parse(text).attributes - names)
        except TemplateError:
            continue  # reported by template_problems
        lines += [f"{path}: {{{name}}}" for name in missing]
    return lines
