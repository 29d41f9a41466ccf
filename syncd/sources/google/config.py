"""Config of the Google Workspace source (no google import here: config loads fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from syncd.config.types import Duration
from syncd.config.urls import http_url
from syncd.sources.config_base import SourceConfigBase

DEFAULT_ENDPOINT = "https://admin.googleapis.com/"
# Read-only, and only these two: users, and group memberships (nested included).
SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
)
MAX_PAGE_SIZE = 500  # users.list maxResults ceiling
MAX_MEMBERS_PAGE = 200  # members.list maxResults ceiling


class GoogleSourceConfig(SourceConfigBase):
    type: Literal["google"]
    credentials_file: Path = Field(
        description="service-account key (JSON), or an external-account (workload identity "
        "federation) file; re-read on every run")
    subject: str | None = Field(
        default=None, description="the admin that domain-wide delegation impersonates")
    customer: str | None = Field(
        default=None, description="customer id; default my_customer (the admin's account)")
    domain: str | None = Field(default=None, description="only the users of this domain")
    groups: list[str] = Field(
        default_factory=list, description="group emails or ids: their members, nested included")
    org_units: list[str] = Field(
        default_factory=list, description="org unit paths: users in them and below")
    include_suspended: bool = Field(default=False, description="also read suspended users")
    include_archived: bool = Field(default=False, description="also read archived users")
    api_endpoint: str = Field(
        default=DEFAULT_ENDPOINT, description="Directory API root (tests point it at a stand-in)")
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle to trust (TLS inspection proxies, tests)")
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    timeout: Duration = Field(default=60.0, description="per HTTP request")
    max_retries: int = Field(default=5, ge=0, le=50,
                             description="retries of one request on 429/5xx/rate-limit 403")
    max_retry_wait: Duration = Field(
        default=300.0, description="total time one read may wait between retries")

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError(f"{value!r} is not an email address (the admin to impersonate)")
        return value

    @field_validator("org_units")
    @classmethod
    def _org_units(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"{path!r}: org unit paths start with / (e.g. /Engineering)")
        return [path.rstrip("/") or "/" for path in value]

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        for group in value:
            if not group.strip():
                raise ValueError("an empty group; give its email (e.g. ai-pilot@example.com)")
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        url = http_url(value, example=DEFAULT_ENDPOINT, sent="the access token").geturl()
        return url if url.endswith("/") else url + "/"

    @model_validator(mode="after")
    def _customer_or_domain(self) -> GoogleSourceConfig:
        if self.customer is not None and self.domain is not None:
            raise ValueError("give customer or domain, not both")
        return self

    @property
    def customer_id(self) -> str:
        return self.customer or "my_customer"
