"""The python-ldap (C libldap) backend. Imported only when this backend is chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from typing import Any, Literal

import ldap
from ldap.controls import SimplePagedResultsControl

from syncd.sources.ldap.backends import (
    Attributes,
    ConnectSettings,
    LdapFailure,
    Page,
    failure_for_result,
)


def _details(exc: ldap.LDAPError) -> tuple[int, str, str]:
    # python-ldap puts a dict {result, desc, info, ...} in args[0]; use only those
    # fields (never repr(exc)), so nothing from the request can end up in a message.
    info: dict[str, Any] = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return int(info.get("result", -1)), str(info.get("desc", type(exc).__name__)), \
        str(info.get("info", ""))


def _failure(exc: ldap.LDAPError, url: str, doing: str) -> LdapFailure:
    code, desc, info = _details(exc)
    if isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR):
        detail = f"{desc}: {info}" if info else desc
        return LdapFailure("connect", f"{doing} on {url} failed: {detail}")
    if isinstance(exc, ldap.TIMEOUT):
        return LdapFailure("connect", f"{doing} on {url} timed out (timeout setting)")
    if code < 0:
        return LdapFailure("other", f"{doing} on {url} failed: {desc} {info}".strip())
    return failure_for_result(code, desc, info)


class PyLdapConnection:
    def __init__(self, conn: Any, settings: ConnectSettings) -> None:
        self._conn = conn
        self._settings = settings
        self._closed = False

    @classmethod
    def open(cls, settings: ConnectSettings) -> PyLdapConnection:
        try:
            conn = ldap.initialize(settings.url)
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            conn.set_option(ldap.OPT_REFERRALS, 0)  # never chase: a referral fails the read
            conn.set_option(ldap.OPT_DEREF, ldap.DEREF_NEVER)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, settings.connect_timeout)
            conn.set_option(ldap.OPT_TIMEOUT, settings.timeout)
            conn.timeout = settings.timeout  # used by the synchronous *_s calls
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT,
                            ldap.OPT_X_TLS_DEMAND if settings.tls_verify else ldap.OPT_X_TLS_NEVER)
            if settings.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(settings.ca_file))
            # Per-connection TLS options take effect only in a new TLS context, made last.
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
            if settings.start_tls:
                conn.start_tls_s()
        except ldap.LDAPError as exc:
            raise _failure(exc, settings.url, "StartTLS" if settings.start_tls else "connect") \
                from None
        except ValueError:  # libldap's "option error": a ca_file it cannot load
            raise LdapFailure("connect", f"libldap cannot load ca_file {settings.ca_file}") \
                from None
        return cls(conn, settings)

    def bind(self, dn: str | None, password: str | None) -> None:
        try:
            self._conn.simple_bind_s(dn or "", password or "")
        except ldap.LDAPError as exc:
            raise _failure(exc, self._settings.url, "bind") from None

    def search(self, base: str, scope: Literal["subtree", "one"], filter: str,
               attributes: Sequence[str], page_size: int) -> Generator[Page, None, None]:
        ldap_scope = ldap.SCOPE_SUBTREE if scope == "subtree" else ldap.SCOPE_ONELEVEL
        attrlist = list(attributes) or ["1.1"]

        def ask(cookie: bytes) -> int:
            control = SimplePagedResultsControl(criticality=False, size=page_size,
                                                cookie=cookie)
            return int(self._conn.search_ext(base, ldap_scope, filter, attrlist,
                                             serverctrls=[control]))

        msgid: int | None = None
        try:
            msgid = ask(b"")
            while msgid is not None:
                _, data, _, controls = self._conn.result3(msgid, all=1,
                                                          timeout=self._settings.timeout)
                cookie = b""
                for ctrl in controls or ():
                    if ctrl.controlType == SimplePagedResultsControl.controlType:
                        cookie = ctrl.cookie
                # Ask for the next page before handing this one over: the server
                # prepares it while the caller processes this one (100k entries on
                # loopback: 3.7 s -> 2.2 s, bench/bench_ldap.py).
                msgid = ask(cookie) if cookie else None
                entries: list[tuple[str, Attributes]] = []
                references: list[str] = []
                for dn, attrs in data:
                    if dn is None:  # a search continuation reference: (None, [urls])
                        references.extend(str(u) for u in attrs)
                    else:
                        entries.append((dn, attrs))
                yield Page(entries, references)
        except ldap.LDAPError as exc:
            raise _failure(exc, self._settings.url, "search") from None
        finally:
            # The caller stopped early: drop the request in flight, unless the connection
            # is already gone (after unbind python-ldap has no handle left to abandon on).
            if msgid is not None and not self._closed:
                with contextlib.suppress(ldap.LDAPError):
                    self._conn.abandon(msgid)

    def read(self, dn: str, attributes: Sequence[str]) -> Attributes | None:
        try:
            found = self._conn.search_ext_s(dn, ldap.SCOPE_BASE, "(objectClass=*)",
                                            list(attributes) or ["1.1"],
                                            timeout=self._settings.timeout)
        except ldap.NO_SUCH_OBJECT:
            return None
        except ldap.LDAPError as exc:
            raise _failure(exc, self._settings.url, "read") from None
        for entry_dn, attrs in found:
            if entry_dn is not None:
                return dict(attrs)
        return None

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(ldap.LDAPError):  # the connection is gone either way
            self._conn.unbind_s()
