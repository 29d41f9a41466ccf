"""Config -> Source. Directory client libraries are imported only when configured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from syncd.sources.base import Source
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.csv.config import CsvSourceConfig
from syncd.sources.entra.config import EntraSourceConfig
from syncd.sources.google.config import GoogleSourceConfig
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.okta.config import OktaSourceConfig


class MissingExtra(ValueError):
    """A source needs an optional dependency that is not installed: a config error
    (exit 2) with the command that fixes it, not an internal error."""


def _installed(module: str) -> bool:
    """Whether `package` or `package.sub` can be imported, without importing anything
    (not even the parent package: `syncd validate` must stay light)."""
    top, _, sub = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not sub:
        return spec is not None
    return any((Path(folder) / sub).is_dir() or (Path(folder) / f"{sub}.py").is_file()
               for folder in spec.submodule_search_locations or ())


_GOOGLE_MODULES = ("googleapiclient", "google.auth", "google_auth_httplib2", "httplib2")


def missing_extra(config: SourceConfigBase) -> str | None:
    """Why this source cannot run on this install, naming the `pip install`, or None.
    find_spec only: checking must not pay for importing the libraries."""
    extra, what = None, ""
    if isinstance(config, EntraSourceConfig):
        if not all(_installed(m) for m in ("msgraph", "azure.identity")):
            extra, what = "entra", "an Entra ID source needs the Microsoft Graph SDK"
    elif isinstance(config, OktaSourceConfig):
        if not all(_installed(m) for m in ("okta", "aiohttp")):
            extra, what = "okta", "an Okta source needs the okta SDK"
    elif isinstance(config, GoogleSourceConfig):
        if not all(_installed(m) for m in _GOOGLE_MODULES):
            extra, what = "google", ("a Google Workspace source needs google-api-python-client "
                                     "and google-auth")
    elif (isinstance(config, LdapSourceConfig) and config.backend == "python-ldap"
          and not _installed("ldap")):
        extra, what = "ldap-fast", "backend: python-ldap needs python-ldap"
    if extra is None:
        return None
    return (f"source {config.name!r}: {what}, which is not installed: "
            f"run pip install 'syncd[{extra}]' (the full container image has every extra)")


def build_source(config: SourceConfigBase) -> Source:
    """Raises MissingExtra when the source's libraries are not installed."""
    if (problem := missing_extra(config)) is not None:
        raise MissingExtra(problem)
    if isinstance(config, CsvSourceConfig):
        from syncd.sources.csv.source import CsvSource

        return CsvSource(config)
    if isinstance(config, LdapSourceConfig):
        from syncd.sources.ldap.source import LdapSource

        return LdapSource(config)
    if isinstance(config, EntraSourceConfig):
        from syncd.sources.entra.source import EntraSource

        return EntraSource(config)
    if isinstance(config, OktaSourceConfig):
        from syncd.sources.okta.source import OktaSource

        return OktaSource(config)
    if isinstance(config, GoogleSourceConfig):
        from syncd.sources.google.source import GoogleSource

        return GoogleSource(config)
    raise TypeError(f"no source for {type(config).__name__}")
