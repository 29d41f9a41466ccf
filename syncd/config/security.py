"""Insecure transport settings a config explicitly allows, and the warning each earns.

Each is refused unless opted into (`nebuly.allow_plaintext`, LDAP `allow_plaintext`)
or is itself the opt-in (LDAP `tls_verify: false`). Allowed, it is still warned
about on every run and by `validate`, as one structured event per setting
(`security.insecure_transport`, a stable name to alert on) and counted in the
daemon's `syncd_insecure_transports{setting}`: a test shortcut must not become
production silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from syncd.config.model import SyncdConfig
from syncd.config.urls import is_loopback

EVENT = "security.insecure_transport"
# Stable names: the `setting` field of the event and the label of the metric.
SETTINGS = ("nebuly.allow_plaintext", "ldap.tls_verify", "ldap.allow_plaintext")


@dataclass(frozen=True, slots=True)
class Insecure:
    setting: str  # one of SETTINGS
    where: str  # the config path: "nebuly", "sources[1]"
    key: str  # the key that is insecure there
    source: str | None
    risk: str


def insecure_transports(config: SyncdConfig) -> tuple[Insecure, ...]:
    found: list[Insecure] = []
    parts = urlsplit(config.nebuly.url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        found.append(Insecure(
            "nebuly.allow_plaintext", "nebuly", "base_url", None,
            "plain http:// to Nebuly: the API key and the roster travel unencrypted"))
    for i, source in enumerate(config.sources):
        if source.type != "ldap":
            continue
        where = f"sources[{i}]"
        if not source.tls_verify:
            found.append(Insecure(
                "ldap.tls_verify", where, "tls_verify", source.name,
                "the server certificate is not checked: any server that answers gets the "
                "bind password and can serve a forged roster"))
        plain = [u for u in source.urls if u.lower().startswith("ldap://")]
        if source.allow_plaintext and plain and not source.start_tls:
            found.append(Insecure(
                "ldap.allow_plaintext", where, "allow_plaintext", source.name,
                "plain ldap:// without StartTLS: the bind password and the roster travel "
                "unencrypted"))
    return tuple(found)


def warn_insecure_transports(config: SyncdConfig, logger: Any) -> tuple[Insecure, ...]:
    """Log one `security.insecure_transport` warning per insecure setting in use."""
    found = insecure_transports(config)
    for item in found:
        logger.warning(EVENT, setting=item.setting, source=item.source,
                       key=f"{item.where}.{item.key}", risk=item.risk)
    return found
