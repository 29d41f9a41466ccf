"""TLS trust and proxies for syncd's HTTPS clients (Nebuly, Graph).

Companies put a TLS-inspecting proxy between servers and the internet and install
its CA in the hosts' trust store; httpx trusts only certifi's bundle by default,
so the first run would fail there. Every HTTPS client syncd makes therefore starts
from the OS trust store (through `truststore`: the native store on Windows and
macOS, OpenSSL's default paths on Linux, which honour SSL_CERT_FILE/SSL_CERT_DIR),
plus an optional `ca_file` for a CA the host does not trust.

Proxies come from the usual environment variables (HTTPS_PROXY, HTTP_PROXY,
ALL_PROXY, NO_PROXY), read by httpx itself or by `proxy_for` where a client is
built on an explicit transport.
"""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Not in typeshed, but public and documented alongside getproxies().
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]


class TrustError(ValueError):
    """A configured CA file cannot be used. The message names the file."""


def trust_context(ca_file: Path | None = None, *, what: str = "ca_file") -> ssl.SSLContext:
    """A client SSL context trusting the OS store, plus the PEM certificates in `ca_file`."""
    context = _os_trust()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise TrustError(f"{what}: cannot load {ca_file} as PEM CA certificates "
                             f"({reason})") from None
    return context


def _os_trust() -> ssl.SSLContext:
    try:
        import truststore
    except ImportError:  # pragma: no cover - a dependency; kept for vendored installs
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def is_untrusted_certificate(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a failed certificate verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def untrusted_message(url: Any, setting: str) -> str:
    """What to do about a certificate the trust store rejects (no secret in it)."""
    return (f"TLS: the certificate of {url} is not trusted (not signed by a CA in the OS "
            f"trust store). Behind a TLS-inspecting proxy, set {setting} to the proxy's CA "
            "certificate (PEM), or add that CA to the host's trust store or SSL_CERT_FILE")


def proxy_for(url: str) -> str | None:
    """The proxy the environment sets for `url` (None: connect directly).

    For clients built on an explicit transport, which httpx does not give the
    environment's proxies. Same variables and NO_PROXY rules as urllib.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    return proxy
