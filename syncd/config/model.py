"""YAML config -> validated, typed config. Every problem becomes one line naming its path."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncd.config.loading import ConfigError, ConfigLoader, Interpolation
from syncd.config.locate import (
    closest_choice,
    config_keys,
    line_of,
    unknown_key_message,
    value_at,
)
from syncd.config.secrets import read_secret
from syncd.config.types import Duration, LimitValue, parse_limit
from syncd.config.urls import is_loopback, userinfo_problem
from syncd.core.model import IdCase
from syncd.net import trust_context
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.kinds import LazySourceConfig

if TYPE_CHECKING:
    from syncd.sources.kinds import AnySourceConfig

__all__ = ["ConfigError", "NebulyConfig", "SyncdConfig", "json_schema", "load_config",
           "parse_config"]

REGION_URLS = {"us": "https://backend.nebuly.com", "eu": "https://backend.eu.nebuly.com"}
# A config is a few KiB; anything this large is a mistake or an attack on the loader.
MAX_CONFIG_BYTES = 1 << 20


class NebulyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Declared before base_url, whose check reads it.
    allow_plaintext: bool = Field(
        default=False,
        description="allow an http:// base_url to a host other than this machine (the API key "
        "travels in clear; warned about on every run)")
    base_url: str | None = Field(default=None, description="overrides region")
    region: Literal["us", "eu"] = "us"
    api: Literal["platform-users", "eligible-users"] = Field(
        default="platform-users",
        description="API flavour; the insert and update verbs are swapped between the two",
    )
    api_key: SecretStr | None = None
    api_key_file: Path | None = Field(default=None, description="e.g. /run/secrets/nebuly")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    timeout: Duration = Field(default=60.0, description="per HTTP request")
    max_retries: int = Field(default=6, ge=0, le=100)
    max_retry_wait: Duration = Field(
        default=300.0, description="total time one call may spend waiting between retries"
    )
    ca_file: Path | None = Field(
        default=None, description="PEM CA certificate(s) trusted for Nebuly besides the OS "
        "trust store, e.g. a TLS-inspecting proxy's CA")

    @field_validator("base_url")
    @classmethod
    def _safe_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if problem := userinfo_problem(value):
            raise ValueError(f"{problem}; give the key in api_key or api_key_file")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an https:// URL such as https://backend.nebuly.com")
        if (parts.scheme == "http" and not is_loopback(parts.hostname)
                and not info.data.get("allow_plaintext")):
            raise ValueError(
                "plain http:// to a host other than this machine would send the API key in "
                "clear; use https://, or (test setups only) set nebuly.allow_plaintext: true")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> NebulyConfig:
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("give api_key or api_key_file, not both")
        if self.api_key is None and self.api_key_file is None:
            raise ValueError("api_key or api_key_file is required")
        return self

    @property
    def url(self) -> str:
        return (self.base_url or REGION_URLS[self.region]).rstrip("/")

    def resolve_api_key(self) -> str:
        return read_secret(self.api_key, self.api_key_file, "nebuly.api_key")

    def trust(self) -> ssl.SSLContext:
        """TLS trust for Nebuly; raises TrustError (a ValueError) for an unusable ca_file."""
        return trust_context(self.ca_file, what="nebuly.ca_file")


class OwnerTag(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(min_length=1)
    value: str = Field(min_length=1)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["sync", "upsert-only", "create-only"] = Field(
        default="sync",
        description="sync: insert, update and deactivate; upsert-only: never deactivate; "
        "create-only: only insert",
    )
    max_deactivations: LimitValue = Field(
        default_factory=lambda: parse_limit("10%"),
        description="a count or a percent of the managed roster; over it, no deactivation runs",
    )
    max_tag_removals: LimitValue = Field(
        default_factory=lambda: parse_limit("10%"),
        description="a count or a percent of the managed roster: over it, no update that takes "
        "a mapped tag's value away runs (they wait for approve or --force); value changes "
        "are not removals",
    )
    departed: Literal["deactivate", "delete"] = Field(
        default="deactivate", description="delete is permanent and loses history"
    )
    prune_tags: bool = Field(
        default=False, description="drop tag keys syncd does not map (other writers' tags)"
    )
    owner_tag: OwnerTag | None = Field(
        default=None,
        description="manage only users carrying this tag; syncd adds it to users it inserts",
    )
    id_case: IdCase = IdCase.LOWER
    grace_runs: int = Field(
        default=1, ge=1, le=1000,
        description="a person must be missing for this many consecutive successful runs before "
        "active_to is set (to the date first missed); needs state_dir")
    grace_period: Duration | None = Field(
        default=None, description="and/or for this long (whole days, e.g. 3d); needs state_dir")
    plan_expiry: Duration = Field(
        default=7 * 86400.0, description="how long a plan blocked by a guard can be approved")
    source_precedence: list[str] = Field(
        default_factory=list,
        description="source names, highest first, deciding tag values for a person found "
        "in several sources; default: config order")


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="auto: JSON unless both stdout and stderr are terminals (then console)"
    )
    level: Literal["debug", "info", "warning", "error"] = "info"


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    interval: Duration | None = Field(default=None, description="e.g. 1h; default 1h unless cron")
    cron: str | None = Field(default=None, description="crontab expression, e.g. '0 * * * *'")
    timezone: str = Field(default="UTC", description="for cron")
    jitter: Duration | None = Field(default=None, description="random delay added to each run")
    run_at_start: bool = Field(default=True, description="run once as soon as the daemon starts")
    max_backoff: Duration = Field(
        default=21600.0, description="after consecutive failures the wait doubles, up to this")
    shutdown_grace: Duration = Field(
        default=30.0, description="on SIGTERM, how long a run in progress may take to finish "
        "its in-flight batch")

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if self.interval is not None and self.cron is not None:
            raise ValueError("give interval or cron, not both")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r}: expected 5 fields (minute hour day month "
                             "day-of-week), e.g. '0 * * * *'")
        return self

    @property
    def period(self) -> float:
        """Nominal seconds between runs (for cron, an hour: used for staleness only)."""
        return self.interval if self.interval is not None else 3600.0


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    # Loopback unless told otherwise: /metrics is plain HTTP. The container image sets
    # SYNCD_HEALTH_HOST=0.0.0.0, where the probes and the scraper come from outside.
    host: str = Field(
        default_factory=lambda: os.environ.get("SYNCD_HEALTH_HOST") or "127.0.0.1",
        description="address for /livez, /readyz, /metrics (default 127.0.0.1, or "
        "$SYNCD_HEALTH_HOST; the container image sets 0.0.0.0)")
    port: int = Field(default=9464, ge=0, le=65535)
    stale_after: float = Field(
        default=3.0, gt=0,
        description="/readyz fails when the last successful run is older than this many intervals")


if TYPE_CHECKING:
    SourceConfig = AnySourceConfig
else:
    # Each entry is validated by the model its `type` names, imported on demand.
    SourceConfig = Annotated[SourceConfigBase, LazySourceConfig]


class SyncdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nebuly: NebulyConfig
    sources: list[SourceConfig] = Field(min_length=1)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    state_dir: Path | None = Field(
        default=None, description="writable directory for run records and pending plans")
    state_lock_wait: Duration = Field(
        default=30.0, description="how long a command waits for another syncd command "
        "(the daemon's run, once, approve, rollback) to release state_dir before giving up "
        "with exit 7")

    # The file this config was loaded from (not a key): hints that admins paste,
    # such as `syncd approve ID --config FILE`, name it.
    _origin: Path | None = PrivateAttr(default=None)

    @property
    def origin(self) -> Path | None:
        return self._origin

    def command_hint(self, command: str) -> str:
        """`syncd COMMAND --config FILE`, ready to paste."""
        return f"syncd {command} --config {self._origin}" if self._origin else f"syncd {command}"

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice; names must be unique")
            seen.add(source.name)
        return sources

    @model_validator(mode="after")
    def _policy_fits_the_sources(self) -> SyncdConfig:
        seen = {source.name for source in self.sources}
        grace = self.policy.grace_runs > 1 or self.policy.grace_period is not None
        if grace and self.state_dir is None:
            raise ValueError("policy.grace_runs / grace_period need state_dir (a writable "
                             "directory that remembers who has been missing since when)")
        for name in self.policy.source_precedence:
            if name not in seen:
                raise ValueError(f"policy.source_precedence names {name!r}, which is not a "
                                 f"source (sources: {', '.join(sorted(seen))})")
        return self


def _format_loc(loc: tuple[int | str, ...], data: Any) -> str:
    """('sources', 0, 'path') -> 'sources[0].path' (without validator and branch names)."""
    out = ""
    for key in config_keys(loc, data):
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else key
    return out or "(top level)"


_SECTION_TYPES = frozenset({"dict_type", "model_type", "list_type", "model_attributes_type"})


def format_validation_error(error: ValidationError, data: Any,
                            tree: yaml.Node | None = None) -> list[str]:
    """One line per problem: `path: message (line N)`, with the key probably meant for
    an unknown one. `tree` is the file's YAML node tree (for the line numbers)."""
    items = error.errors(include_url=False, include_input=False)
    locs = [tuple(item["loc"]) for item in items]
    problems = []
    schema: dict[str, Any] | None = None  # built once, for the first unknown key
    for item, loc in zip(items, locs, strict=True):
        # A tag given as a mapping fails the union's string branch too; that half is
        # noise ("tags.x.str: Input should be a valid string") next to the real problem.
        if loc and loc[-1] == "str" and any(o[:len(loc) - 1] == loc[:-1] and o != loc
                                            for o in locs):
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "field required"
        elif item["type"] in ("literal_error", "enum"):
            # Not pydantic's "Input should be ...": say what was written and what is allowed.
            got = value_at(data, loc)
            expected = item["ctx"]["expected"]
            message = f"expected one of {expected}; got {got!r}{closest_choice(got, expected)}"
        elif item["type"] in _SECTION_TYPES and value_at(data, loc) is None:
            # `key:` with nothing after it: almost always the lines meant for it are
            # indented level with it instead of under it.
            message = "has no value; the entries meant for it must be indented under it"
        elif item["type"] == "extra_forbidden":
            schema = schema if schema is not None else json_schema()
            message = unknown_key_message(loc, data, schema)
        # The line goes last: every problem starts with the path it names.
        line = line_of(tree, loc) if tree is not None and loc else None
        where = f" (line {line})" if line is not None else ""
        problems.append(f"{_format_loc(loc, data)}: {message}{where}")
    return problems


def parse_config(text: str, origin: str = "<config>") -> SyncdConfig:
    try:
        raw = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if "'\\t'" in problem:
            problem = "a tab in the indentation; YAML indents with spaces only"
        raise ConfigError([f"{origin}:{where}: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{origin}: nested too deeply to be a config"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{origin}: expected a mapping with keys nebuly, sources, policy"])
    expansion = Interpolation()
    data = expansion.walk(raw)
    if expansion.problems:
        raise ConfigError(expansion.problems)
    try:
        return SyncdConfig.model_validate(data)
    except ValidationError as exc:
        # Aliases were refused above, so composing the tree again is cheap.
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        raise ConfigError([expansion.scrub(p)
                           for p in format_validation_error(exc, data, tree)]) from None


def load_config(path: Path) -> SyncdConfig:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: is larger than 1 MiB; a config is a few KiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: is not UTF-8 text"]) from None
    config = _resolve_relative_paths(parse_config(text, str(path)), path.parent)
    config._origin = path
    return config


def _resolve_relative_paths(config: SyncdConfig, base: Path) -> SyncdConfig:
    """Relative file paths in the config are relative to the config file, as admins expect."""
    sources = []
    for source in config.sources:
        updates = {
            name: base / value
            for name, value in source
            if isinstance(value, Path) and not value.is_absolute()
        }
        sources.append(source.model_copy(update=updates) if updates else source)
    nebuly = config.nebuly
    for name in ("api_key_file", "ca_file"):
        value = getattr(nebuly, name)
        if value is not None and not value.is_absolute():
            nebuly = nebuly.model_copy(update={name: base / value})
    state_dir = config.state_dir
    if state_dir is not None and not state_dir.is_absolute():
        state_dir = base / state_dir
    return config.model_copy(update={"sources": sources, "nebuly": nebuly,
                                     "state_dir": state_dir})


def json_schema() -> dict[str, Any]:
    return SyncdConfig.model_json_schema(mode="validation")
