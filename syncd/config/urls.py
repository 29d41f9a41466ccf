"""URL checks shared by the config and its security report: loopback hosts, credentials."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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
