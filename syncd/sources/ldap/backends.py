"""The contract both LDAP client libraries are wrapped to, and the choice between them.

A backend only moves bytes: connect (TLS), bind, paged search, read one entry.
It reports every failure as LdapFailure with an admin-readable message built
from result codes and server diagnostics only, never from the request, so no
secret can leak into it. Policy (what is a complete read, scoping, values)
lives in ldap_source.py, identical for both backends.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

BackendName = Literal["ldap3", "python-ldap"]
# "refused": the server will not take this bind (wrong password, or it wants TLS):
# trying the next server with the same account only risks a lockout.
FailureKind = Literal["connect", "refused", "incomplete", "no-such-object", "other"]

# Result codes that mean "the server stopped before the end" (RFC 4511 4.1.9).
RESULT_NAMES = {
    3: "time limit exceeded", 4: "size limit exceeded", 8: "strong(er) authentication required",
    10: "referral",
    11: "administrative limit exceeded", 32: "no such object", 49: "invalid credentials",
    50: "insufficient access rights", 51: "busy", 52: "unavailable", 53: "unwilling to perform",
}
INCOMPLETE_CODES = frozenset({3, 4, 10, 11})
# adminLimitExceeded: also what OpenLDAP answers, before any entry, to a page larger
# than its `size.pr` limit ("illegal pagedResults page size").
ADMIN_LIMIT_EXCEEDED = 11

Attributes = dict[str, list[bytes]]  # attribute name as the server spells it -> raw values


class LdapFailure(Exception):
    """A backend operation failed. `message` is safe to show (no secrets).

    `code` is the LDAP result code when the server sent one (None for a socket,
    TLS or library failure).
    """

    def __init__(self, kind: FailureKind, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class ConnectSettings:
    url: str
    start_tls: bool
    ca_file: Path | None
    tls_verify: bool
    tls_strict: bool  # Python's strict X.509 rules (the ldap3 backend; libldap has none)
    connect_timeout: float
    timeout: float  # per page / per operation


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[tuple[str, Attributes]]
    references: list[str]  # search continuation references (referrals) in this page


class Connection(Protocol):
    def bind(self, dn: str | None, password: str | None) -> None: ...

    def search(self, base: str, scope: Literal["subtree", "one"], filter: str,
               attributes: Sequence[str], page_size: int) -> Generator[Page, None, None]:
        """Yield pages to the end; raise LdapFailure on any non-success result.

        The caller closes the generator when it stops early, before close()."""
        ...

    def read(self, dn: str, attributes: Sequence[str]) -> Attributes | None:
        """One entry by DN (base search), or None when it does not exist / is not visible."""
        ...

    def close(self) -> None: ...


def python_ldap_available() -> bool:
    # find_spec, not import: choosing a backend must not pay for loading libldap.
    return importlib.util.find_spec("ldap") is not None


def choose_backend(configured: Literal["auto", "ldap3", "python-ldap"]) -> BackendName:
    if configured == "auto":
        return "python-ldap" if python_ldap_available() else "ldap3"
    return configured


def connect(backend: BackendName, settings: ConnectSettings) -> Connection:
    """Open (and secure) a connection; raises LdapFailure."""
    if backend == "python-ldap":
        if not python_ldap_available():
            raise LdapFailure("other", "backend python-ldap is not installed: "
                              "pip install 'syncd[ldap-fast]' (or set backend: ldap3)")
        from syncd.sources.ldap.backend_pyldap import PyLdapConnection

        return PyLdapConnection.open(settings)
    from syncd.sources.ldap.backend_ldap3 import Ldap3Connection

    return Ldap3Connection.open(settings)


def result_message(code: int, description: str, diagnostic: str) -> str:
    name = RESULT_NAMES.get(code, description or "error")
    text = f"{name} (LDAP result {code})"
    diagnostic = diagnostic.strip()
    return f"{text}: {diagnostic}" if diagnostic else text


def failure_for_result(code: int, description: str, diagnostic: str) -> LdapFailure:
    message = result_message(code, description, diagnostic)
    if code in INCOMPLETE_CODES:
        return LdapFailure("incomplete", message, code)
    if code == 32:
        return LdapFailure("no-such-object", message, code)
    if code == 49:
        return LdapFailure("refused", message + ad_bind_hint(diagnostic), code)
    if code == 8:
        # AD (and Samba) refuse a simple bind on a connection without TLS.
        return LdapFailure("refused", message + " [the server requires an encrypted "
                           "connection for this bind: use ldaps:// or start_tls: true]", code)
    return LdapFailure("other", message, code)


# AD puts the reason for a failed bind in the diagnostic as "data 52e".
_AD_BIND_REASONS = {
    "525": "user not found", "52e": "wrong password", "530": "logon not permitted at this time",
    "531": "logon not permitted from this workstation", "532": "password expired",
    "533": "account disabled", "701": "account expired", "773": "password must be reset",
    "775": "account locked out",
}


def ad_bind_hint(diagnostic: str) -> str:
    marker = diagnostic.lower().find("data ")
    if marker < 0:
        return ""
    code = diagnostic[marker + 5:marker + 8].lower()
    reason = _AD_BIND_REASONS.get(code)
    return f" [Active Directory: {reason}]" if reason else ""
