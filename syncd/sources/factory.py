"""Config -> Source. Directory client libraries are imported only when configured."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.sources.base import Source

if TYPE_CHECKING:
    from syncd.sources.kinds import AnySourceConfig


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


def missing_extra(config: AnySourceConfig) -> str | None:
    """Why this source cannot run on this install, naming the `pip install`, or None.
    find_spec only: checking must not pay for importing the libraries."""
    extra, what = None, ""
    if config.type == "entra":
        if not all(_installed(m) for m in ("msgraph", "azure.identity")):
            extra, what = "entra", "an Entra ID source needs the Microsoft Graph SDK"
    elif config.type == "okta":
        if not all(_installed(m) for m in ("okta", "aiohttp")):
            extra, what = "okta", "an Okta source needs the okta SDK"
    elif config.type == "google":
        if not all(_installed(m) for m in _GOOGLE_MODULES):
            extra, what = "google", ("a Google Workspace source needs google-api-python-client "
                                     "and google-auth")
    elif (config.type == "ldap" and config.backend == "python-ldap"
          and not _installed("ldap")):
        extra, what = "ldap-fast", "backend: python-ldap needs python-ldap"
    if extra is None:
        return None
    return (f"source {config.name!r}: {what}, which is not installed: "
            f"run pip install 'syncd[{extra}]' (the full container image has every extra)")


def build_source(config: AnySourceConfig) -> Source:
    """Raises MissingExtra when the source's libraries are not installed.

    Dispatches on `type`, so only the configured types' code is ever imported."""
    if (problem := missing_extra(config)) is not None:
        raise MissingExtra(problem)
    if config.type == "csv":
        from syncd.sources.csv.source import CsvSource

        return CsvSource(config)
    if config.type == "ldap":
        from syncd.sources.ldap.source import LdapSource

        return LdapSource(config)
    if config.type == "entra":
        from syncd.sources.entra.source import EntraSource

        return EntraSource(config)
    if config.type == "okta":
        from syncd.sources.okta.source import OktaSource

        return OktaSource(config)
    if config.type == "google":
        from syncd.sources.google.source import GoogleSource

        return GoogleSource(config)
    raise TypeError(f"no source for type {config.type!r}")
