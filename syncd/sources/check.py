"""`syncd validate --connect`: read every source once, write nothing, contact no Nebuly.

For an LDAP source it binds with the configured account, checks that every
base DN and group exists, shows the effective filter, then reads as a run
would and counts the people. Every problem is one line naming the config
field (`sources[0].groups[1]: no such group ...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from syncd.sources.base import SourceError
from syncd.sources.factory import build_source

if TYPE_CHECKING:
    from syncd.sources.kinds import AnySourceConfig
    from syncd.sources.ldap.config import LdapSourceConfig


@dataclass(frozen=True, slots=True)
class SourceCheck:
    lines: tuple[str, ...]  # what was found, for the admin
    problems: tuple[str, ...]  # one line each, prefixed with the field's path


def check_source(index: int, config: AnySourceConfig) -> SourceCheck:
    where = f"sources[{index}]"
    if config.type == "ldap":
        return _check_ldap(where, config)
    try:
        read = build_source(config).read()
    except SourceError as exc:
        return SourceCheck((), (f"{where}: {exc.message}",))
    return SourceCheck((f"would read {len(read.records)} people",), ())


def _check_ldap(where: str, config: LdapSourceConfig) -> SourceCheck:
    from syncd.sources.ldap.source import LdapSource

    source = LdapSource(config)
    try:
        conn, url = source.open()
    except SourceError as exc:
        field = "bind_dn" if " refused: " in exc.message else "url"
        return SourceCheck((), (f"{where}.{field}: {exc.message}",))
    try:
        missing = source.missing_objects(conn)
    finally:
        conn.close()
    lines = [f"bound to {url} as {config.bind_dn or '(anonymous)'} "
             f"(backend {source.backend})",
             f"filter: {source.plan.filter}",
             f"base_dn: {'; '.join(config.base_dns)} (scope {config.scope})"]
    if config.groups or config.exclude_groups:
        lines.append(f"group lookup: {config.effective_group_lookup}")
    if missing:
        return SourceCheck(tuple(lines),
                           tuple(f"{where}.{field}: {problem}" for field, problem in missing))
    try:
        read = source.read()
    except SourceError as exc:
        return SourceCheck(tuple(lines), (f"{where}: {exc.message}",))
    lines.append(f"would read {len(read.records)} people")
    return SourceCheck(tuple(lines), ())
