"""Reading the config's YAML: a loader that refuses what a config never needs, and
`${VAR}` expansion that remembers what it expanded (so no message can echo it)."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from syncd import log
from syncd.config.secrets import SECRET_KEYS


class ConfigError(Exception):
    """A config that cannot be used. `problems` holds one admin-readable line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")
# Values shorter than this are not scrubbed from messages: they would mask ordinary
# words, and a secret that short protects nothing anyway (log.register_secret agrees).
_MIN_SCRUBBED = 4


class Interpolation:
    """`${VAR}` expansion that remembers what it expanded, so that no message about
    the config can echo a value that came from the environment or a secret field.

    `timeout: ${NEBULY_API_KEY}` (a slip) must give "nebuly.timeout: ...; got
    '${NEBULY_API_KEY}'", not the key. Values in secret fields (`api_key`, any
    `*_file`, ...) are registered for log masking here, before validation, so even
    a config that is refused cannot leak them later.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.values: dict[str, str] = {}  # expanded value -> what to show instead

    def expand(self, text: str, path: str, secret: bool) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                self.problems.append(
                    f"{path}: environment variable {name} is not set "
                    f"(export it, or write ${{{name}:-default}})")
                return ""
            if len(value) >= _MIN_SCRUBBED:
                self.values.setdefault(value, f"${{{name}}}")
            return value

        expanded = _VAR.sub(replace, text)
        if secret and expanded:
            log.register_secret(expanded)
            if len(expanded) >= _MIN_SCRUBBED:
                self.values.setdefault(expanded, "[REDACTED]")
        return expanded

    def walk(self, node: Any, path: str = "", secret: bool = False) -> Any:
        if isinstance(node, dict):
            return {k: self.walk(v, f"{path}.{k}" if path else str(k), k in SECRET_KEYS)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, f"{path}[{i}]", secret) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.expand(node, path, secret)
        return node

    def scrub(self, message: str) -> str:
        """`message` with every expanded or secret value replaced (longest first)."""
        for value in sorted(self.values, key=len, reverse=True):
            if value in message:
                message = message.replace(value, self.values[value])
        return message


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, and aliases.

    Plain YAML keeps the last key silently, so a second `api:` pasted below the
    first would quietly win; an admin wants to hear about it. Aliases (`*name`)
    are refused outright: the loader copies each one, so a few hundred bytes of
    nested aliases (a "billion laughs") expand to gigabytes, and the daemon
    reloads its config before every run. A config never needs them.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported; write the value out",
                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (also on line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)
