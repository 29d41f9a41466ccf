"""URL checks shared by the config, its sources and its security report: loopback hosts,
credentials, http(s) URLs."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit


def is_loopback(host: str) -> bool:
    """True for this machine: `localhost`, 127.0.0.0/8 and ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def userinfo_problem(url: str) -> str | None:
    """A URL with `user:password@` carries a credential: refuse it without repeating it."""
    netloc = urlsplit(url).netloc if "://" in url else ""
    if "@" in netloc:
        return "must not contain a user name or password (user:password@)"
    return None


def http_url(value: str, *, example: str, sent: str) -> SplitResult:
    """`value`, without surrounding spaces, split: an http(s) URL that `sent` may go to.

    Refused with a ValueError saying what to write instead: a `user:password@`
    part (named, never repeated), a value without scheme or host (`acme.okta.com`),
    and plain http to a host other than this machine, where `sent` (say "the API
    token") would cross the network in clear. A loopback http URL is a test
    stand-in. `example` is a URL of the right shape for this field.
    """
    text = value.strip()
    if problem := userinfo_problem(text):
        raise ValueError(problem)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        if "@" in text:  # `user:password@host` without a scheme: never repeated
            raise ValueError("is not an http(s) URL and must not contain a user name or "
                             f"password (user:password@); write it like {example}")
        raise ValueError(f"{value!r} is not an http(s) URL; write it like {example}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{value!r}: use https ({sent} is sent to it; plain http only "
                         "to this machine)")
    return parts
