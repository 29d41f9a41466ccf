"""The ldap3 (pure Python) backend. Imported only when this backend is chosen."""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Generator, Sequence
from typing import Any, Literal

import ldap3
from ldap3.core import exceptions as ldap3_errors
from ldap3.strategy.sync import SyncStrategy

from syncd.sources.ldap.backends import (
    Attributes,
    ConnectSettings,
    LdapFailure,
    Page,
    failure_for_result,
)
from syncd.sources.ldap.tls import host_port, ssl_context

_PAGED_OID = "1.2.840.113556.1.4.319"


def _socket_failure(exc: Exception, what: str) -> LdapFailure:
    # ldap3 messages describe the socket/TLS problem and never carry the request;
    # the type name is kept because it is what an admin can search for.
    return LdapFailure("connect", f"{what}: {type(exc).__name__}: {exc}")


class _ContextTls(ldap3.Tls):  # type: ignore[misc]
    """TLS through a standard SSLContext with the standard host name check.

    ldap3 turns the context's check off and calls its own matcher instead, which
    uses ssl.match_hostname (deprecated; removed in Python 3.12, where ldap3's
    fallback ignores IP SANs). Verifying inside the handshake avoids both.
    """

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=context.verify_mode)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_side=False, do_handshake_on_connect=do_handshake,
            server_hostname=self._host)


def _discard(conn: Any) -> None:
    # ldap3 leaves the socket of a failed open (or failed StartTLS) unclosed.
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class _RawSyncStrategy(SyncStrategy):  # type: ignore[misc]
    """SYNC strategy that turns a search entry into dn + raw values and nothing more.

    Stock ldap3 also builds a decoded `attributes` dict for every entry (to_unicode
    per value, ~110 get_config_parameter calls per entry) that this source never
    reads; skipping it cuts the ldap3 backend's CPU by about a third. Anything
    unusual (an entry carrying controls, every other operation) takes the stock path.
    """

    def decode_response_fast(self, ldap_message: dict[str, Any]) -> dict[str, Any]:
        if ldap_message["protocolOp"] != 4 or ldap_message["controls"]:
            return dict(super().decode_response_fast(ldap_message))
        payload = ldap_message["payload"]
        raw = {
            bytes(attribute[3][0][3]).decode("utf-8", "replace"):
                [bytes(value[3]) for value in attribute[3][1][3]]
            for attribute in payload[1][3]
        }
        return {"type": "searchResEntry",
                "dn": bytes(payload[0][3]).decode("utf-8", "replace"),
                "raw_attributes": raw}


class _RawConnection(ldap3.Connection):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ldap3 binds these strategy methods onto the connection in __init__.
        self.strategy = _RawSyncStrategy(self)
        self.send = self.strategy.send
        self.open = self.strategy.open
        self.get_response = self.strategy.get_response
        self.post_send_single_response = self.strategy.post_send_single_response
        self.post_send_search = self.strategy.post_send_search


class Ldap3Connection:
    def __init__(self, conn: Any, url: str) -> None:
        self._conn = conn
        self._url = url

    @classmethod
    def open(cls, settings: ConnectSettings) -> Ldap3Connection:
        conn: Any = None
        try:
            context = ssl_context(settings.ca_file, settings.tls_verify, settings.tls_strict)
            tls = _ContextTls(context, host_port(settings.url)[0])
            server = ldap3.Server(settings.url, get_info=ldap3.NONE, tls=tls,
                                  connect_timeout=settings.connect_timeout)
            conn = _RawConnection(
                server,
                # SYNC, not SAFE_SYNC: SAFE_SYNC copies every response for thread
                # safety we do not need (one connection per read), ~1.6x slower.
                client_strategy=ldap3.SYNC,
                auto_bind=ldap3.AUTO_BIND_NONE,
                auto_referrals=False,  # an unfollowed referral must fail the read
                auto_range=False,  # ranged values are detected and refused by the source
                check_names=False,  # no schema: skip the per-attribute schema formatting
                read_only=True,
                raise_exceptions=False,
                # ldap3 packs this into SO_RCVTIMEO as whole seconds.
                receive_timeout=max(1, math.ceil(settings.timeout)),
                return_empty_attributes=False,
            )
            conn.open()
            if settings.start_tls and not conn.start_tls():
                raise LdapFailure("connect", f"StartTLS refused by {settings.url}: "
                                  f"{conn.result.get('description')} {conn.result.get('message')}")
        except LdapFailure:
            _discard(conn)
            raise
        except (ldap3_errors.LDAPException, OSError, ssl.SSLError) as exc:
            _discard(conn)
            raise _socket_failure(exc, f"cannot connect to {settings.url}") from None
        return cls(conn, settings.url)

    def _require_success(self) -> None:
        # Look at the result code itself: ldap3's search() returns True whenever
        # entries came back, even with "size limit exceeded" and no cookie, which
        # would otherwise end the paging loop early with a short roster.
        result = self._conn.result or {}
        code = int(result.get("result", -1))
        if code != 0:
            raise failure_for_result(code, str(result.get("description", "")),
                                     str(result.get("message", "")))

    def bind(self, dn: str | None, password: str | None) -> None:
        conn = self._conn
        conn.user, conn.password = dn, password
        conn.authentication = ldap3.SIMPLE if dn else ldap3.ANONYMOUS
        try:
            conn.bind()
        except ldap3_errors.LDAPException as exc:
            raise _socket_failure(exc, f"bind to {self._url} failed") from None
        finally:
            # ldap3's Connection.__repr__ prints the password: do not keep it around.
            conn.password = None
        self._require_success()

    def search(self, base: str, scope: Literal["subtree", "one"], filter: str,
               attributes: Sequence[str], page_size: int) -> Generator[Page, None, None]:
        conn = self._conn
        ldap_scope = ldap3.SUBTREE if scope == "subtree" else ldap3.LEVEL
        cookie: bytes | None = None
        while True:
            try:
                conn.search(base, filter, search_scope=ldap_scope,
                                 dereference_aliases=ldap3.DEREF_NEVER,
                                 attributes=list(attributes) or ["1.1"],
                                 paged_size=page_size, paged_cookie=cookie)
            except ldap3_errors.LDAPException as exc:
                raise _socket_failure(exc, f"search on {self._url} failed") from None
            self._require_success()
            entries: list[tuple[str, Attributes]] = []
            references: list[str] = []
            for item in conn.response or ():
                kind = item.get("type")
                if kind == "searchResEntry":
                    entries.append((item["dn"], item["raw_attributes"]))
                elif kind == "searchResRef":
                    references.extend(item.get("uri") or ["(no URL)"])
            yield Page(entries, references)
            control = (conn.result.get("controls") or {}).get(_PAGED_OID)
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                return

    def read(self, dn: str, attributes: Sequence[str]) -> Attributes | None:
        conn = self._conn
        try:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE,
                             dereference_aliases=ldap3.DEREF_NEVER,
                             attributes=list(attributes) or ["1.1"])
        except ldap3_errors.LDAPException as exc:
            raise _socket_failure(exc, f"read of {dn!r} on {self._url} failed") from None
        if (conn.result or {}).get("result") == 32:
            return None
        self._require_success()
        for item in conn.response or ():
            if item.get("type") == "searchResEntry":
                return dict(item["raw_attributes"])
        return None

    def close(self) -> None:
        # The connection is gone either way.
        with contextlib.suppress(ldap3_errors.LDAPException, OSError):
            self._conn.unbind()
