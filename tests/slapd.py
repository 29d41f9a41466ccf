"""A throwaway OpenLDAP server for tests and benchmarks.

Every server gets its own directory, config, database, CA and loopback ports,
so tests never depend on (or disturb) a system slapd. Bulk data goes in with
`slapadd` while the server is stopped (100k users in seconds); small changes go
in online with `ldapmodify`, which, unlike slapadd, runs the overlays.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUFFIX = "dc=corp,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-not-for-syncd"
SERVICE_DN = f"cn=syncd,ou=service,{SUFFIX}"
SERVICE_PASSWORD = "service-password"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")


def slapd_available() -> bool:
    return all(shutil.which(tool) for tool in ("slapd", "slapadd", "ldapwhoami", "ldapmodify"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- TLS material -----------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path
    other_ca_file: Path  # a CA that did NOT sign the server cert (for rejection tests)


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Python 3.13's default context rejects CAs without a critical keyUsage.
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _local_names() -> list[str]:
    # libldap (python-ldap, ldapsearch) checks a URL host of "localhost" against the
    # machine's own host name instead, so the cert names that too.
    names = ["localhost", socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(n for n in names if n))


def make_tls(directory: Path) -> TlsFiles:
    """A CA, a server cert for localhost/127.0.0.1 signed by it, and an unrelated CA."""
    ca_key, ca_cert = _ca("syncd test CA")
    _, other_cert = _ca("syncd unrelated CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            *(x509.DNSName(name) for name in _local_names()),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                     directory / "other-ca.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(pem))
    files.other_ca_file.write_bytes(other_cert.public_bytes(pem))
    files.cert_file.write_bytes(cert.public_bytes(pem))
    files.key_file.write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.key_file.chmod(0o600)
    return files


# --- LDIF helpers -------------------------------------------------------------------


def ldif_entry(dn: str, attributes: dict[str, str | bytes | Sequence[str | bytes]]) -> str:
    """One LDIF record; bytes values are base64-encoded (`attr:: ...`)."""
    import base64

    lines = [f"dn: {dn}"]
    for name, value in attributes.items():
        values = [value] if isinstance(value, str | bytes) else list(value)
        for item in values:
            if isinstance(item, bytes):
                lines.append(f"{name}:: {base64.b64encode(item).decode()}")
            else:
                lines.append(f"{name}: {item}")
    return "\n".join(lines) + "\n\n"


def user_ldif(uid: str, *, ou: str = PEOPLE, locked: bool = False,
              **extra: str | bytes | Sequence[str | bytes]) -> str:
    attributes: dict[str, str | bytes | Sequence[str | bytes]] = {
        "objectClass": ["inetOrgPerson"], "uid": uid, "cn": uid, "sn": uid,
        "mail": f"{uid}@corp.example",
    }
    if locked:
        # ppolicy: a pwdAccountLockedTime of 000001010000Z locks the account until an admin
        # unlocks it; any value means "locked" for syncd.
        attributes["pwdAccountLockedTime"] = "000001010000Z"
    attributes.update(extra)
    return ldif_entry(f"uid={uid},{ou}", attributes)


def group_ldif(cn: str, members: Iterable[str], *, ou: str = GROUPS) -> str:
    member_list = list(members) or [""]  # groupOfNames needs a member; "" is the usual stand-in
    return ldif_entry(f"cn={cn},{ou}", {"objectClass": "groupOfNames", "cn": cn,
                                        "member": member_list})


def _base_ldif() -> str:
    return "".join([
        ldif_entry(SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": "corp",
                            "o": "Corp"}),
        ldif_entry(PEOPLE, {"objectClass": "organizationalUnit", "ou": "people"}),
        ldif_entry(GROUPS, {"objectClass": "organizationalUnit", "ou": "groups"}),
        ldif_entry(f"ou=service,{SUFFIX}", {"objectClass": "organizationalUnit", "ou": "service"}),
        ldif_entry(SERVICE_DN, {"objectClass": ["organizationalRole", "simpleSecurityObject"],
                                "cn": "syncd", "userPassword": SERVICE_PASSWORD}),
    ])


# --- the server ---------------------------------------------------------------------


class Slapd:
    """One slapd process on two free loopback ports (ldap:// with StartTLS, and ldaps://).

    `sizelimit` is what a non-admin bind may get from one search (500 like a
    stock server); `paged_total` is how many entries a *paged* search may return
    in total (None: unlimited, so paging past the size limit works as on AD;
    "hard": slapd's own default, which stops paged searches at the size limit);
    `page_limit` is the largest page a client may ask for (`size.pr`; None: any).
    """

    def __init__(self, directory: Path, *, sizelimit: int | None = 500,
                 paged_total: int | str | None = None, timelimit: int | None = None,
                 page_limit: int | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_dir = self.dir / "db"
        self.db_dir.mkdir(exist_ok=True)
        self.tls = make_tls(self.dir)
        self.sizelimit = sizelimit
        self.paged_total = paged_total
        self.timelimit = timelimit
        self.page_limit = page_limit
        self.ldap_port = self.ldaps_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "slapd.conf"
        self.conf.write_text(self._config())
        self._check(["slaptest", "-u", "-f", str(self.conf)], "slaptest")
        self.slapadd(_base_ldif())

    @property
    def ldap_url(self) -> str:
        # localhost, not 127.0.0.1: ldap3 on Python 3.12+ ignores IP SANs.
        return f"ldap://localhost:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.ldaps_port}"

    def _config(self) -> str:
        schemas = "\n".join(f"include {SCHEMA_DIR / name}.schema"
                            for name in ("core", "cosine", "inetorgperson", "nis"))
        limit = "unlimited" if self.sizelimit is None else str(self.sizelimit)
        prtotal = "unlimited" if self.paged_total is None else str(self.paged_total)
        timelimit = f"timelimit {self.timelimit}" if self.timelimit else ""
        page = f" size.pr={self.page_limit}" if self.page_limit else ""
        return f"""{schemas}
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload ppolicy
pidfile {self.dir / "slapd.pid"}
argsfile {self.dir / "slapd.args"}
TLSCACertificateFile {self.tls.ca_file}
TLSCertificateFile {self.tls.cert_file}
TLSCertificateKeyFile {self.tls.key_file}
sizelimit size.soft={limit} size.hard={limit} size.prtotal={prtotal}{page}
{timelimit}

database mdb
maxsize 4294967296
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {self.db_dir}
dbnosync
index objectClass eq
index uid eq
overlay ppolicy

access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="{SERVICE_DN}" read
    by * none
"""

    @staticmethod
    def _check(cmd: list[str], what: str, stdin: str | None = None) -> None:
        done = subprocess.run(cmd, input=stdin.encode() if stdin is not None else None,
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-2000:]}")

    def slapadd(self, ldif: str | Path) -> None:
        """Bulk-load offline (fast; overlays do not run). The server must be stopped."""
        if self.running:
            raise RuntimeError("slapadd needs the server stopped")
        if isinstance(ldif, Path):
            self._check(["slapadd", "-q", "-f", str(self.conf), "-l", str(ldif)], "slapadd")
        else:
            self._check(["slapadd", "-q", "-f", str(self.conf)], "slapadd", stdin=ldif)

    def modify(self, ldif: str) -> None:
        """Apply LDIF changes online as the admin (`changetype:` records)."""
        self._check(["ldapmodify", "-x", "-H", f"ldap://127.0.0.1:{self.ldap_port}",
                     "-D", ROOT_DN, "-w", ROOT_PASSWORD], "ldapmodify", stdin=ldif)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        # New ports on every start unless the old ones are still free: a test that
        # stops the server and starts it again keeps its URLs.
        for attr in ("ldap_port", "ldaps_port"):
            port = getattr(self, attr)
            if port == 0 or _port_in_use(port):
                setattr(self, attr, _free_port())
        if self.ldap_port == self.ldaps_port:
            self.ldaps_port = _free_port()
        for port in (self.ldap_port, self.ldaps_port):
            if _port_in_use(port):  # a stale server would pass the readiness probe
                raise RuntimeError(f"port {port} is already in use")
        urls = f"ldap://127.0.0.1:{self.ldap_port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        log = (self.dir / "slapd.log").open("ab")
        # -d none: stay in the foreground and still print fatal errors (-d 0 prints nothing).
        self.process = subprocess.Popen(
            ["slapd", "-f", str(self.conf), "-h", urls, "-d", "none"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"slapd exited: {self.log_tail()}")
            probe = subprocess.run(
                ["ldapwhoami", "-x", "-H", f"ldap://127.0.0.1:{self.ldap_port}",
                 "-D", SERVICE_DN, "-w", SERVICE_PASSWORD], capture_output=True, check=False)
            if probe.returncode == 0 and self.running:
                return
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"slapd not ready after {timeout}s: {self.log_tail()}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM and wait, or SIGKILL: a crash, connections reset)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def log_tail(self) -> str:
        path = self.dir / "slapd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
