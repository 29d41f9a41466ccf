"""TLS for the LDAP source: the ssl context, and why a connection failed, in plain words.

The two client libraries describe the same failure differently: ldap3 wraps
Python's ssl error in its own exception text, libldap (python-ldap) says
"Can't contact LDAP server" for a refused port and for a rejected certificate
alike. To report one cause whatever the backend, a failed connection is
probed again here with the plain socket and ssl modules (TCP connect, StartTLS
when configured, TLS handshake with the same trust settings): that probe names
the cause (refused, timed out, untrusted CA, host name, strict X.509 rules).
The probe sends no credentials and reads no data.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

# An LDAPMessage {messageID 1, extendedReq {requestName 1.3.6.1.4.1.1466.20037}}:
# the StartTLS request (RFC 4511 4.14.1), fixed bytes.
_START_TLS = bytes([0x30, 0x1D, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16]) + \
    b"1.3.6.1.4.1.1466.20037"

# OpenSSL verify messages of Python's strict X.509 mode (VERIFY_X509_STRICT, on by
# default since Python 3.13): a certificate that is merely not RFC 5280-perfect.
_STRICT_ONLY = ("Missing Authority Key Identifier", "Missing Subject Key Identifier",
                "Basic Constraints of CA cert not marked critical",
                "CA cert does not include key usage extension",
                "Subject empty and Subject Alt Name extension not critical",
                "Authority Key Identifier marked critical")


def ssl_context(ca_file: Path | None, verify: bool, strict: bool) -> ssl.SSLContext:
    """The client context: system or ca_file trust, host name check, strict X.509 or not.

    Strict X.509 is set explicitly either way, so Python 3.11 and 3.13 (whose
    default turned it on) behave the same for the same config.
    """
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if strict:
        context.verify_flags |= ssl.VERIFY_X509_STRICT
    else:
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def host_port(url: str) -> tuple[str, int]:
    """scheme://host[:port] (host may be a bracketed IPv6 address) -> (host, port)."""
    scheme, _, rest = url.partition("://")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.lstrip(":")
    else:
        host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() else (636 if scheme.lower() == "ldaps" else 389)


def verify_cause(message: str) -> str:
    """A certificate verify message -> what it means and what to do."""
    message = message.rstrip(".")  # OpenSSL ends some messages with a full stop
    if any(text in message for text in _STRICT_ONLY):
        return (f"{message}: the certificate breaks a strict X.509 rule that Python "
                "enforces (by default since 3.13); have it reissued, or set "
                "tls_strict: false (verification stays on)")
    if "mismatch" in message:
        return (f"{message}: the host in url is not a name in the certificate; use a "
                "name the certificate lists (subjectAltName)")
    if "expired" in message or "not yet valid" in message:
        return f"{message}: check the certificate's dates and this machine's clock"
    return (f"{message}: the certificate is not signed by a CA in ca_file (or the system "
            "trust store when ca_file is unset)")


def _read_ldap_message(sock: socket.socket) -> bytes:
    """One BER-encoded LDAPMessage (to skip the StartTLS response)."""
    head = sock.recv(2)
    if len(head) < 2:
        raise OSError("the server closed the connection")
    length = head[1]
    if length & 0x80:
        size = sock.recv(length & 0x7F)
        length = int.from_bytes(size, "big")
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise OSError("the server closed the connection")
        body += chunk
    return body


def probe(url: str, start_tls: bool, context: ssl.SSLContext, timeout: float) -> str | None:
    """Why a TLS connection to `url` fails, or None when this probe gets through."""
    host, port = host_port(url)
    tls = start_tls or url.lower().startswith("ldaps")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on {host}:{port} (or a firewall rejects it)"
    except TimeoutError:
        return f"timed out connecting to {host}:{port} (a firewall drops it, or the host is down)"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    with sock:
        if not tls:
            return None
        try:
            if start_tls:
                sock.sendall(_START_TLS)
                _read_ldap_message(sock)
            with context.wrap_socket(sock, server_hostname=host):
                return None
        except ssl.SSLCertVerificationError as exc:
            return "TLS: certificate verify failed: " + verify_cause(
                str(exc.verify_message or exc.reason))
        except (ssl.SSLError, OSError) as exc:
            return f"TLS handshake failed: {exc}"
