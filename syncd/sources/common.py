"""Helpers the HTTP-based sources (Entra, Okta, Google) share: secret-free error
text and the trust store for `ca_file`. Standard library only."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

MAX_DETAIL = 400


class CaFileError(Exception):
    """`ca_file` cannot be loaded; the message names the file."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced, shortened to one readable paragraph."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def tls_hint(detail: str) -> str:
    """Advice for the error an admin behind a TLS-inspecting proxy sees first."""
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return "; the server certificate is not trusted (set ca_file to your CA bundle)"
    return ""


def trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    """The SSL context trusting `ca_file`, or True (the system's trust store)."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise CaFileError(f"ca_file: cannot load {ca_file} as PEM certificates "
                          f"({exc.strerror or exc})") from None
