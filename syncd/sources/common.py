"""Helpers the HTTP-based sources (Entra, Okta, Google) share: secret-free error
text and the trust store for `ca_file` (syncd.net)."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

from syncd.net import TrustError, trust_context

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


def trust(ca_file: Path | None) -> ssl.SSLContext:
    """The OS trust store plus `ca_file`, as every HTTPS client of syncd trusts (syncd.net).

    Not httpx's default (certifi's bundle only): a company's proxy CA installed on
    the host must be trusted without configuring each source.
    """
    try:
        return trust_context(ca_file, what="ca_file")
    except TrustError as exc:
        raise CaFileError(str(exc)) from None
