"""A throwaway Samba Active Directory domain controller for tests.

Provisioned into its own directory (about 5 s here), filled offline through
Samba's Python bindings (tests/samba_fill.py, run by the system python3), and
started on loopback only. Unlike slapd, a DC listens on the standard ports
(389, 636, 88, 464, 3268, 3269, 135), so one machine runs one DC: the suite
starts one per session and every AD test shares it.

TLS: by default the DC serves a certificate from the suite's own CA (SAN
localhost and 127.0.0.1, with an Authority Key Identifier). `use_own_cert()`
switches to the certificate Samba generates itself (CN <host>.<realm>, no SAN,
no Authority Key Identifier), which Python 3.13's strict X.509 check rejects.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.slapd import TlsFiles, make_tls

REALM = "CORP.EXAMPLE"
DOMAIN = "CORP"
BASE = "DC=corp,DC=example"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE}"
ADMIN_PASSWORD = "Admin-Pass-not-for-syncd-1"  # a throwaway test DC
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-samba lives here, not in the venv
PORTS = (389, 636)
FILL_SCRIPT = Path(__file__).with_name("samba_fill.py")
# Only what an LDAP client needs: no DNS (port 53), no NetBIOS, no replication.
SERVICES = "-dns -nbt -wrepl -s3fs -winbindd -ntp_signd -kcc -dnsupdate -drepl"


def samba_available() -> bool:
    tools = all(shutil.which(t) for t in ("samba", "samba-tool", "ldapsearch"))
    return tools and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import samba.samdb"], capture_output=True,
        check=False).returncode == 0


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(cmd: list[str], what: str, stdin: str | None = None) -> str:
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout)[-3000:]}")
    return done.stdout


class SambaDC:
    """One Samba AD DC in `directory`; provision(), fill(), start(), stop()."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.conf = directory / "etc" / "smb.conf"
        self.tls: TlsFiles = make_tls(directory)
        self.process: subprocess.Popen[bytes] | None = None
        self.own_cert = False
        self.ids: dict[str, tuple[str, str]] = {}  # sAMAccountName -> (GUID, SID)

    ldap_url = "ldap://localhost:389"
    # localhost, not 127.0.0.1: ldap3 on Python 3.12+ ignores IP SANs.
    ldaps_url = "ldaps://localhost:636"

    @property
    def own_ca_file(self) -> Path:
        """The CA of the certificate Samba generates itself (after use_own_cert())."""
        return self.dir / "private" / "tls" / "ca.pem"

    def provision(self) -> None:
        d = self.dir
        _run(["samba-tool", "domain", "provision", f"--targetdir={d}", f"--realm={REALM}",
              f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=SAMBA_INTERNAL",
              f"--adminpass={ADMIN_PASSWORD}", "--host-ip=127.0.0.1",
              "--option=interfaces=lo", "--option=bind interfaces only=yes",
              f"--option=log file={d}/log.%m", f"--option=pid directory={d}/pid",
              f"--option=server services={SERVICES}"], "samba-tool domain provision")
        self._write_tls_options()

    def _write_tls_options(self) -> None:
        text = self.conf.read_text()
        head, sep, rest = text.partition("[global]\n")
        rest = "".join(line for line in rest.splitlines(keepends=True)
                       if not line.strip().startswith("tls "))
        options = ["\ttls enabled = yes\n"]
        if not self.own_cert:
            options += [f"\ttls certfile = {self.tls.cert_file}\n",
                        f"\ttls keyfile = {self.tls.key_file}\n",
                        f"\ttls cafile = {self.tls.ca_file}\n"]
        self.conf.write_text(head + sep + "".join(options) + rest)

    def fill(self, spec: dict[str, Any]) -> None:
        """Add the spec's entries (offline: the DC must be stopped)."""
        if self.running:
            raise RuntimeError("fill needs the DC stopped")
        out = _run([SYSTEM_PYTHON, str(FILL_SCRIPT), str(self.conf)], "samba_fill.py",
                   stdin=json.dumps(spec))
        self.ids = {name: (guid, sid) for name, (guid, sid) in json.loads(out).items()}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        for port in PORTS:  # a stale DC or slapd would pass the readiness probe
            if port_in_use(port):
                raise RuntimeError(f"port {port} is already in use: another LDAP server "
                                   "or DC runs on this machine; one DC per machine")
        log = (self.dir / "samba.out").open("ab")
        self.process = subprocess.Popen(["samba", "-F", "-s", str(self.conf)], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"samba exited: {self.log_tail()}")
            probe = subprocess.run(["ldapsearch", "-x", "-H", "ldap://127.0.0.1:389", "-b", "",
                                    "-s", "base", "namingContexts"], capture_output=True,
                                   check=False)
            ldaps = port_in_use(636)
            if probe.returncode == 0 and ldaps:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"samba not ready after {timeout}s: {self.log_tail()}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the whole process group (samba forks a process per service)."""
        if self.process is None:
            return
        pid = self.process.pid
        if self.process.poll() is None:
            os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                self.process.wait()
        # The children may outlive the parent for a moment; the ports must be free
        # before the next start.
        with_children = True
        deadline = time.monotonic() + 20
        while with_children and time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                with_children = False
            else:
                time.sleep(0.1)
        if with_children:
            os.killpg(pid, signal.SIGKILL)
        while any(port_in_use(p) for p in PORTS) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process = None

    def use_own_cert(self, own: bool) -> None:
        """Restart on Samba's self-generated certificate (True) or the suite's (False)."""
        if own == self.own_cert:
            return
        self.stop()
        self.own_cert = own
        self._write_tls_options()
        self.start()

    def ldap_modify(self, ldif: str) -> None:
        """Apply LDIF changes online as Administrator (over LDAPS)."""
        self._as_admin("ldapmodify", stdin=ldif)

    def delete_tree(self, dn: str) -> None:
        """Delete `dn` and everything below it, online as Administrator."""
        self._as_admin("ldapdelete", "-r", dn)

    def _as_admin(self, tool: str, *args: str, stdin: str = "") -> None:
        env = {**os.environ, "LDAPTLS_CACERT": str(self.tls.ca_file)}
        done = subprocess.run([tool, "-x", "-H", self.ldaps_url, "-D", ADMIN_DN,
                               "-w", ADMIN_PASSWORD, *args], input=stdin, capture_output=True,
                              text=True, check=False, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr[-2000:]}")

    def log_tail(self) -> str:
        parts = []
        for name in ("samba.out", "log.samba"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-1500:])
        return "\n".join(parts)
