"""What `syncd validate` checks without contacting anything: every problem the first run
would otherwise meet on this machine (files, state_dir, schedule, installed extras,
DN shapes, templates against a CSV header). Checks that need a directory or Nebuly
live apart (`validate --connect`), so this module stays offline."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.config.model import SyncdConfig
from syncd.config.secrets import read_secret
from syncd.core.templates import template_problems
from syncd.sources.base import SourceError
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.factory import missing_extra

if TYPE_CHECKING:
    from syncd.sources.csv.config import CsvSourceConfig


@dataclass(frozen=True)
class OfflineCheck:
    problems: list[str] = field(default_factory=list)
    # source name -> what was learnt reading it (e.g. a CSV's record count)
    notes: dict[str, str] = field(default_factory=dict)


def offline_checks(config: SyncdConfig, *, read_csv: bool = True) -> OfflineCheck:
    """`read_csv=False` when `validate --connect` reads every source itself (exit 3)."""
    check = OfflineCheck(template_problems(config.sources))
    problems = check.problems
    try:
        config.nebuly.resolve_api_key()
    except ValueError as exc:
        problems.append(str(exc))
    for i, source in enumerate(config.sources):
        where = f"sources[{i}]"
        if (extra := missing_extra(source)) is not None:
            problems.append(f"{where}: {extra}")
        problems += [f"{where}.{p}" for p in _file_problems(source)]
        if source.type == "ldap":
            for name in ("base_dn", "groups", "exclude_groups"):
                problems += [f"{where}.{p}" for p in dn_problems(name, getattr(source, name))]
        if source.type == "csv" and read_csv:
            _read_csv(source, where, check)
    if config.state_dir is not None and (problem := state_dir_problem(config.state_dir)):
        problems.append(problem)
    problems += _schedule_problems(config)
    return check


def _file_problems(source: SourceConfigBase) -> list[str]:
    """Secret files and other files the source opens (CA bundles, certificates, tokens)."""
    problems = []
    for name in type(source).model_fields:
        value = getattr(source, name)
        if not isinstance(value, Path) or name == "path":
            continue
        secret = name.removesuffix("_file")
        try:
            if name.endswith("_file") and hasattr(source, secret):
                read_secret(getattr(source, secret), value, secret)
            else:
                with value.open("rb") as handle:
                    handle.read(1)
        except ValueError as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{name}: cannot read {value}: {exc.strerror}")
    return problems


def _read_csv(source: CsvSourceConfig, where: str, check: OfflineCheck) -> None:
    """A CSV is local: read it as a run would (file, encoding, header against templates)."""
    from syncd.sources.csv.source import CsvSource

    try:
        read = CsvSource(source).read()
    except SourceError as exc:
        check.problems.append(f"{where}.path: {exc.message}")
        return
    check.notes[source.name] = f"{len(read.records)} records, {len(read.problems)} skipped"


# An RDN naming a container, never a group or person on its own: after a first
# element it means YAML split one DN at its commas (`[CN=A,OU=G,DC=x]` is a list).
_CONTAINER_RDN = re.compile(r"^\s*(dc|ou|o|c|l|st)\s*=[^,]*$", re.IGNORECASE)


def dn_problems(name: str, value: str | list[str]) -> list[str]:
    values = [value] if isinstance(value, str) else list(value)
    problems = [f"{name}: {v!r} is not a DN (like CN=AI Pilot,OU=Groups,DC=corp,DC=example)"
                for v in values if "=" not in v]
    if len(values) > 1 and any(_CONTAINER_RDN.match(v) for v in values[1:]):
        regrouped: list[str] = []
        for v in values:
            if regrouped and _CONTAINER_RDN.match(v):
                regrouped[-1] += f",{v.strip()}"
            else:
                regrouped.append(v.strip())
        quoted = ", ".join(f'"{dn}"' for dn in regrouped)
        problems.append(f"{name}: {values!r} looks like DNs split at their commas by YAML "
                        f"(in [...] an unquoted comma separates items); quote each DN: "
                        f"{name}: [{quoted}]")
    return problems


def state_dir_problem(path: Path) -> str | None:
    """Whether a run could create and write state_dir; leaves nothing behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (f"state_dir: {path} cannot be created: {existing} is not a directory; point "
                "state_dir at a directory (syncd creates it if it is missing)")
    # Try it rather than trust the mode bits: root passes every access() check, and
    # some filesystems (/proc, read-only mounts, full disks) refuse whatever the mode.
    try:
        if existing != path:
            os.rmdir(tempfile.mkdtemp(prefix=".syncd-validate-", dir=existing))
        else:
            with tempfile.TemporaryFile(dir=path):
                pass
    except OSError as exc:
        if existing != path:
            return (f"state_dir: {path} cannot be created: {existing} does not take new "
                    f"folders ({exc.strerror})")
        return f"state_dir: {path} is not writable: {exc.strerror}"
    return None


def _schedule_problems(config: SyncdConfig) -> list[str]:
    from syncd.app.daemon import build_schedule

    try:
        build_schedule(config.schedule)
    except ValueError as exc:
        return [str(exc)]
    return []
