"""Config -> Source. Directory client libraries are imported only when configured."""

from __future__ import annotations

from syncd.sources.base import Source
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.csv.config import CsvSourceConfig
from syncd.sources.entra.config import EntraSourceConfig
from syncd.sources.google.config import GoogleSourceConfig
from syncd.sources.ldap.config import LdapSourceConfig
from syncd.sources.okta.config import OktaSourceConfig


def build_source(config: SourceConfigBase) -> Source:
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
