"""Config of the Okta source (no okta import here: config loads fast)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from syncd.config.secrets import read_secret
from syncd.config.types import Duration
from syncd.config.urls import http_url
from syncd.sources.config_base import SourceConfigBase

# What an API service app needs to read people, groups and app assignments.
DEFAULT_SCOPES = ("okta.users.read", "okta.groups.read", "okta.apps.read")
# Okta's page-size ceilings: /users 200, /apps/{id}/users 500, /groups/{id}/users 1000.
MAX_PAGE_SIZE = 1000


class OktaStatus(StrEnum):
    """Okta user lifecycle statuses."""

    STAGED = "STAGED"
    PROVISIONED = "PROVISIONED"
    ACTIVE = "ACTIVE"
    RECOVERY = "RECOVERY"
    PASSWORD_EXPIRED = "PASSWORD_EXPIRED"  # noqa: S105 (a status name)
    LOCKED_OUT = "LOCKED_OUT"
    SUSPENDED = "SUSPENDED"
    DEPROVISIONED = "DEPROVISIONED"


# People who can still sign in (a locked-out or expired password is a
# temporary state of someone who has access); STAGED/PROVISIONED never
# activated, SUSPENDED/DEPROVISIONED lost access.
DEFAULT_STATUSES = (OktaStatus.ACTIVE, OktaStatus.PASSWORD_EXPIRED, OktaStatus.LOCKED_OUT,
                    OktaStatus.RECOVERY)


class OktaCredentialKind(StrEnum):
    API_TOKEN = "api_token"  # noqa: S105 (a kind name)
    PRIVATE_KEY = "private_key_jwt"


class OktaSourceConfig(SourceConfigBase):
    type: Literal["okta"]
    org_url: str = Field(description="e.g. https://acme.okta.com (not the -admin URL)")
    api_token: SecretStr | None = Field(default=None, description="SSWS API token")
    api_token_file: Path | None = Field(default=None, description="re-read on every run")
    client_id: str | None = Field(
        default=None, description="OAuth API service app (private_key_jwt); with private_key_file")
    private_key_file: Path | None = Field(
        default=None, description="PEM private key of the service app; re-read on every run")
    key_id: str | None = Field(
        default=None, description="kid of the service app's public key, when Okta needs it")
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES), description="OAuth scopes to request")
    app: str | None = Field(
        default=None, description="app id: users assigned to it, directly or via groups")
    groups: list[str] = Field(
        default_factory=list, description="group ids: their members (union with app)")
    statuses: list[OktaStatus] = Field(
        default_factory=lambda: list(DEFAULT_STATUSES),
        description="user statuses that count as having access")
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle to trust (TLS inspection proxies, tests)")
    page_size: int = Field(default=200, ge=1, le=MAX_PAGE_SIZE,
                           description="asked per page; Okta lowers it to each endpoint's cap")
    timeout: Duration = Field(default=60.0, description="per HTTP request")
    max_retries: int = Field(
        default=5, ge=0, le=50, description="retries of one request on 429/503/504")
    max_retry_wait: Duration = Field(
        default=300.0,
        description="total time one read may wait for rate limits; a longer X-Rate-Limit-Reset "
        "fails the run instead of sleeping")

    @field_validator("org_url")
    @classmethod
    def _org_url(cls, value: str) -> str:
        parts = http_url(value, example="https://acme.okta.com", sent="the API token")
        if "-admin." in (parts.hostname or ""):
            raise ValueError(f"{value!r} is the admin console; use the org URL without -admin")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{value!r}: give the org URL only, without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("app")
    @classmethod
    def _app_id(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "/" in value):
            raise ValueError(f"{value!r} is not an app id (e.g. 0oa1ai2agent3)")
        return value

    @field_validator("groups")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        for group in value:
            if not group.strip() or "/" in group:
                raise ValueError(f"{group!r} is not a group id (e.g. 00g1abc)")
        return value

    @field_validator("statuses")
    @classmethod
    def _some_status(cls, value: list[OktaStatus]) -> list[OktaStatus]:
        if not value:
            raise ValueError("give at least one status (default: ACTIVE, PASSWORD_EXPIRED, "
                             "LOCKED_OUT, RECOVERY)")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> OktaSourceConfig:
        token = self.api_token is not None or self.api_token_file is not None
        oauth = self.client_id is not None or self.private_key_file is not None
        if token and oauth:
            raise ValueError("give api_token (or api_token_file) or client_id with "
                             "private_key_file, not both")
        if not token and not oauth:
            raise ValueError("configure a credential: api_token (or api_token_file), or "
                             "client_id with private_key_file (OAuth service app)")
        if self.api_token is not None and self.api_token_file is not None:
            raise ValueError("give api_token or api_token_file, not both")
        if oauth and (self.client_id is None or self.private_key_file is None):
            missing = "private_key_file" if self.client_id else "client_id"
            raise ValueError(f"{missing} is required with OAuth (client_id and private_key_file)")
        if self.key_id is not None and not oauth:
            raise ValueError("key_id is only used with client_id and private_key_file")
        return self

    @property
    def credential_kind(self) -> OktaCredentialKind:
        if self.client_id is not None:
            return OktaCredentialKind.PRIVATE_KEY
        return OktaCredentialKind.API_TOKEN

    def resolve_api_token(self) -> str:
        return read_secret(self.api_token, self.api_token_file, "api_token")

    def read_private_key(self) -> str:
        assert self.private_key_file is not None  # validated above
        return read_secret(None, self.private_key_file, "private_key")
