"""Config of the Microsoft Entra ID source (no msgraph import here: config loads fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from syncd.config.secrets import read_secret
from syncd.config.types import Duration
from syncd.config.urls import http_url, is_loopback
from syncd.core.templates import template_attributes
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.entra.attrs import ASSIGNED

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
# Graph's $top ceiling for /users and transitiveMembers.
MAX_PAGE_SIZE = 999
# kiota sends Graph requests over plain http to these hosts only (its
# AzureIdentityAccessTokenProvider.LOCALHOST_STRINGS): not the loopback rule of
# http_url, a narrower one of the Graph SDK, checked here so that validate says so.
GRAPH_SDK_HTTP_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

CredentialKind = Literal["client_secret", "certificate", "workload_identity", "managed_identity"]


class EntraSourceConfig(SourceConfigBase):
    type: Literal["entra"]
    tenant_id: str | None = Field(
        default=None,
        description="directory (tenant) id; required except with managed_identity",
    )
    client_id: str | None = Field(
        default=None,
        description="application (client) id; with managed_identity: a user-assigned identity",
    )
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = Field(default=None, description="re-read on every run")
    certificate_file: Path | None = Field(
        default=None, description="PEM (private key + certificate) or PKCS#12 file"
    )
    certificate_password: SecretStr | None = None
    certificate_password_file: Path | None = None
    workload_identity: bool = Field(
        default=False, description="AKS workload identity (federated token file)"
    )
    token_file: Path | None = Field(
        default=None,
        description="workload identity token file; default: $AZURE_FEDERATED_TOKEN_FILE",
    )
    managed_identity: bool = Field(default=False, description="Azure managed identity")
    graph_url: str = Field(
        default=DEFAULT_GRAPH_URL,
        description="Graph endpoint; national clouds e.g. https://graph.microsoft.us/v1.0",
    )
    authority: str = Field(
        default=DEFAULT_AUTHORITY,
        description="sign-in host; national clouds e.g. https://login.microsoftonline.us",
    )
    scope: str | None = Field(
        default=None, description="token scope; default: <graph_url host>/.default"
    )
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle to trust (TLS inspection proxies, tests)"
    )
    groups: list[str] = Field(
        default_factory=list,
        description="group object ids; members of any (nested included); empty: all users",
    )
    exclude_groups: list[str] = Field(
        default_factory=list, description="group object ids whose members (nested) are left out"
    )
    app: str | None = Field(
        default=None,
        description="only users assigned to this enterprise application: its appId (client id) "
        "or its service principal object id",
    )
    app_roles: list[str] = Field(
        default_factory=list,
        description="with app: only assignments to these app roles (value, display name or "
        "id); empty: any role",
    )
    app_nested_groups: bool = Field(
        default=False,
        description="with app: also members of groups nested in an assigned group (Entra "
        "itself does not grant them access)",
    )
    include_disabled: bool = Field(
        default=False, description="also read accounts with accountEnabled false"
    )
    include_guests: bool = Field(default=False, description="also read userType Guest accounts")
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    timeout: Duration = Field(default=60.0, description="per HTTP request")
    max_retries: int = Field(
        default=5, ge=0, le=10, description="retries of a throttled (429/503/504) request"
    )
    max_retry_delay: Duration = Field(
        default=60.0,
        description="longest wait before a retry; a longer Retry-After fails the run instead",
    )

    @field_validator("graph_url", "authority")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "authority":
            parts = http_url(value, example=DEFAULT_AUTHORITY, sent="the client credential")
        else:
            parts = http_url(value, example=DEFAULT_GRAPH_URL, sent="the access token")
            if parts.scheme == "http" and parts.hostname not in GRAPH_SDK_HTTP_HOSTS:
                raise ValueError(f"{value!r}: plain http only to localhost, 127.0.0.1 or ::1 "
                                 "(the Graph SDK refuses other hosts); use https")
        return parts.geturl().rstrip("/")

    @field_validator("max_retry_delay")
    @classmethod
    def _retry_delay_bound(cls, value: float) -> float:
        # kiota's RetryHandler never waits 180 s or more.
        if value >= 180:
            raise ValueError("must be less than 180s (Graph's retry middleware limit)")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> EntraSourceConfig:
        kinds = self.credential_kinds()
        if len(kinds) != 1:
            found = f"; found {', '.join(kinds)}" if kinds else ""
            raise ValueError(
                "configure exactly one credential: client_secret (or client_secret_file), "
                f"certificate_file, workload_identity: true or managed_identity: true{found}"
            )
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("give client_secret or client_secret_file, not both")
        if self.certificate_password is not None and self.certificate_password_file is not None:
            raise ValueError("give certificate_password or certificate_password_file, not both")
        kind = kinds[0]
        if kind != "managed_identity":
            missing = [k for k in ("tenant_id", "client_id") if not getattr(self, k)]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required with {kind}")
        if self.token_file is not None and kind != "workload_identity":
            raise ValueError("token_file is only used with workload_identity: true")
        if self.app is None:
            if self.app_roles or self.app_nested_groups:
                raise ValueError("app_roles and app_nested_groups need app (the enterprise "
                                 "application's appId or object id)")
            if ASSIGNED in template_attributes(self):
                raise ValueError("{assignedDateTime} needs app: it is the date of a user's "
                                 "assignment to the enterprise application")
        elif not self.app.strip():
            raise ValueError("app: give the application's appId or service principal object id")
        return self

    def credential_kinds(self) -> list[CredentialKind]:
        kinds: list[CredentialKind] = []
        if self.client_secret is not None or self.client_secret_file is not None:
            kinds.append("client_secret")
        if self.certificate_file is not None:
            kinds.append("certificate")
        if self.workload_identity:
            kinds.append("workload_identity")
        if self.managed_identity:
            kinds.append("managed_identity")
        return kinds

    @property
    def credential_kind(self) -> CredentialKind:
        return self.credential_kinds()[0]

    @property
    def token_scope(self) -> str:
        """The .default scope of the Graph endpoint (national clouds differ).

        A loopback graph_url is a test stand-in for the public cloud.
        """
        if self.scope:
            return self.scope
        host = urlsplit(self.graph_url).hostname or ""
        if is_loopback(host):
            host = "graph.microsoft.com"
        return f"https://{host}/.default"

    def resolve_client_secret(self) -> str:
        return read_secret(self.client_secret, self.client_secret_file, "client_secret")

    def resolve_certificate_password(self) -> str | None:
        if self.certificate_password is None and self.certificate_password_file is None:
            return None
        return read_secret(
            self.certificate_password, self.certificate_password_file, "certificate_password"
        )
