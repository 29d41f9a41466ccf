"""Credentials for the Entra source (azure-identity, async) and secret-free error text.

azure.identity is imported inside functions: loading the config or running a
CSV-only sync must not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from syncd.log import register_secret
from syncd.sources.common import CaFileError, scrub, trust
from syncd.sources.entra.config import EntraSourceConfig

if TYPE_CHECKING:
    import ssl

    from azure.core.credentials_async import AsyncTokenCredential

# Authority hosts MSAL knows; for any other host (Azure Stack, a test stand-in)
# instance discovery would call login.microsoftonline.com and time out.
KNOWN_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
})
# Set by the AKS workload identity webhook in the pod.
TOKEN_FILE_VARIABLE = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105 (a variable name)


class CredentialSetupError(Exception):
    """The credential could not be built (unreadable secret or certificate file...)."""


@dataclass(frozen=True, slots=True)
class CredentialFiles:
    """What the credential is built from, as read now: the secret, certificate or token file.

    Read on every run, so a rotated `*_file` secret applies; `fingerprint` tells
    a kept credential (a daemon's) whether it is still the one to use.
    """

    secret: str | None = None
    certificate: bytes | None = None
    password: str | None = None
    token_file: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to scrub from error text."""
        return tuple(value for value in (self.secret, self.password) if value)

    @property
    def fingerprint(self) -> str:
        """A digest of everything above (never the values themselves)."""
        digest = hashlib.sha256()
        for part in (self.secret, self.password, self.token_file):
            digest.update(b"\0" if part is None else b"\1" + part.encode())
        digest.update(self.certificate or b"")
        return digest.hexdigest()


def read_credential_files(config: EntraSourceConfig) -> CredentialFiles:
    """The secret, certificate or token file of the configured credential, read now."""
    kind = config.credential_kind
    try:
        if kind == "client_secret":
            files = CredentialFiles(secret=config.resolve_client_secret())
        elif kind == "certificate":
            assert config.certificate_file is not None  # validated in config
            password = config.resolve_certificate_password()
            try:
                data = config.certificate_file.read_bytes()
            except OSError as exc:
                raise CredentialSetupError(
                    f"certificate_file: cannot read {config.certificate_file}: {exc.strerror}"
                ) from None
            files = CredentialFiles(certificate=data, password=password or None)
        elif kind == "workload_identity":
            files = CredentialFiles(token_file=_token_file(config))
        else:
            files = CredentialFiles()
    except ValueError as exc:
        # read_secret's messages name no secret; scrub anyway.
        raise CredentialSetupError(scrub(str(exc), ())) from None
    for value in files.secrets:
        register_secret(value)  # masks it in any log event, as a second line of defence
    return files


def build_credential(config: EntraSourceConfig, files: CredentialFiles) -> AsyncTokenCredential:
    """The configured async credential, from the files read by read_credential_files.

    Its sign-in requests trust the OS store plus ca_file, as Graph's do.
    """
    try:
        verify = trust(config.ca_file)
    except CaFileError as exc:
        raise CredentialSetupError(str(exc)) from None
    from azure.identity.aio import (
        CertificateCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    _quiet_azure_identity()
    kind = config.credential_kind
    if kind == "managed_identity":
        # The endpoint comes from the hosting environment (IMDS, or App Service's
        # IDENTITY_ENDPOINT/IDENTITY_HEADER); client_id picks a user-assigned identity.
        return ManagedIdentityCredential(client_id=config.client_id,
                                         transport=sign_in_transport(verify))

    assert config.tenant_id is not None and config.client_id is not None  # validated in config
    common: dict[str, Any] = {"authority": config.authority,
                              "transport": sign_in_transport(verify)}
    if (urlsplit(config.authority).hostname or "") not in KNOWN_AUTHORITY_HOSTS:
        common["disable_instance_discovery"] = True
    try:
        if kind == "client_secret":
            assert files.secret is not None
            return ClientSecretCredential(
                config.tenant_id, config.client_id, files.secret, **common)
        if kind == "certificate":
            return CertificateCredential(
                config.tenant_id, config.client_id, certificate_data=files.certificate,
                password=files.password, **common,
            )
        return WorkloadIdentityCredential(
            tenant_id=config.tenant_id, client_id=config.client_id,
            token_file_path=files.token_file, **common,
        )
    except ValueError as exc:
        # azure-identity's messages (bad PEM/PFX, wrong password) name no secret;
        # scrub anyway.
        raise CredentialSetupError(scrub(str(exc), files.secrets)) from None


def sign_in_transport(verify: ssl.SSLContext) -> Any:
    """azure-core's requests-based async transport, trusting `verify` (its own context:
    urllib3 may change a context it is given).

    azure-identity's default async transport is aiohttp's: importing it and
    building its TLS context cost about half a second of every cold start
    (bench/bench_entra.py), for one token request a run. requests is loaded
    anyway (msal, which azure-identity imports, uses it). The adapter makes
    every connection, proxied ones included, use `verify` instead of
    requests' own CA bundle: the sign-in trusts the OS store plus ca_file.
    """
    import requests
    from azure.core.pipeline.transport import AsyncioRequestsTransport

    class TrustAdapter(requests.adapters.HTTPAdapter):
        def build_connection_pool_key_attributes(
            self, request: requests.PreparedRequest, verify: Any, cert: Any = None,
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = verify_context
            return host, pool

    verify_context = verify
    session = requests.Session()
    session.mount("https://", TrustAdapter())
    session.mount("http://", TrustAdapter())
    return AsyncioRequestsTransport(session=session, session_owner=True)


def _quiet_azure_identity() -> None:
    """azure-identity logs each get_token failure at WARNING, as multi-line plain text
    that breaks the JSON log stream; the SourceError carries the same text. Left
    alone when the logger was configured on purpose.
    """
    logger = logging.getLogger("azure.identity")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)


def _token_file(config: EntraSourceConfig) -> str:
    """The federated token file, checked now: azure-identity would fail with a bare OSError."""
    path = str(config.token_file) if config.token_file else os.environ.get(TOKEN_FILE_VARIABLE)
    if not path:
        raise CredentialSetupError(
            f"workload identity: no token_file and {TOKEN_FILE_VARIABLE} is not set (is the "
            "pod's service account federated and labelled azure.workload.identity/use?)")
    if not os.access(path, os.R_OK):
        raise CredentialSetupError(f"workload identity: cannot read the token file {path}")
    return path


def describe_credential(config: EntraSourceConfig) -> str:
    """Which identity was used, for error messages (ids only, never a secret)."""
    kind = config.credential_kind.replace("_", " ")
    parts = [kind]
    if config.tenant_id:
        parts.append(f"tenant {config.tenant_id}")
    if config.client_id:
        parts.append(f"client {config.client_id}")
    if kind != "managed identity":
        parts.append(f"authority {config.authority}")
    return ", ".join(parts)


def auth_hint(config: EntraSourceConfig, detail: str) -> str:
    """What an admin should check, from the AADSTS code when there is one."""
    if "AADSTS7000215" in detail or "AADSTS7000222" in detail:
        return "the client secret is wrong or expired: create a new one in the app registration"
    if "AADSTS700016" in detail:
        return "client_id is not an application in this tenant"
    if "AADSTS90002" in detail or "AADSTS900023" in detail:
        return "tenant_id is not a known tenant"
    if "AADSTS700027" in detail or "AADSTS700024" in detail:
        return "the certificate is not uploaded to the app registration, or has expired"
    if "AADSTS70021" in detail or "AADSTS700213" in detail:
        return "the federated credential of the app does not match this service account"
    if config.credential_kind == "managed_identity":
        return "is a managed identity assigned to this host, and is client_id right?"
    return "check tenant_id, client_id and the credential in the app registration"
