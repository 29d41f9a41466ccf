"""Config of the LDAP / Active Directory source (no ldap3 import here: config loads fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from syncd.config.types import Duration
from syncd.sources.config_base import SourceConfigBase

Preset = Literal["openldap", "active-directory"]

# AD: userAccountControl bit 2 (ACCOUNTDISABLE), tested with the bitwise-AND rule.
AD_DISABLED_FILTER = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
# OpenLDAP ppolicy: a pwdAccountLockedTime value (of any age) marks a locked account.
OPENLDAP_DISABLED_FILTER = "(pwdAccountLockedTime=*)"

PRESET_FILTERS: dict[str, str] = {
    "openldap": "(objectClass=inetOrgPerson)",
    # objectCategory=person leaves out computer accounts, which are objectClass=user too.
    "active-directory": "(&(objectCategory=person)(objectClass=user))",
}
PRESET_DISABLED_FILTERS: dict[str, str] = {
    "openldap": OPENLDAP_DISABLED_FILTER,
    "active-directory": AD_DISABLED_FILTER,
}


# Active Directory's MaxPageSize: the largest page AD serves, and few round trips.
# A server that refuses it is asked again with smaller pages (see LdapSource).
DEFAULT_PAGE_SIZE = 1000


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_filter(text: str) -> str:
    """Wrap a bare `attr=value` in parentheses and check the parentheses balance.

    The server does the real parsing; this catches the common typo at config
    time, where the message can name the key.
    """
    text = text.strip()
    if not text:
        raise ValueError("is empty")
    if not text.startswith("("):
        text = f"({text})"
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise ValueError(f"{text!r} has unbalanced parentheses")
    return text


class LdapSourceConfig(SourceConfigBase):
    type: Literal["ldap"]
    preset: Preset = Field(
        default="openldap",
        description="directory flavour: default filter, disabled-account rule, group lookup",
    )
    url: str | list[str] = Field(description="ldaps://host:636 or a list tried in order")
    bind_dn: str | None = Field(default=None, description="omit for an anonymous bind")
    bind_password: SecretStr | None = None
    bind_password_file: Path | None = None
    start_tls: bool = Field(default=False, description="upgrade ldap:// with StartTLS")
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle; default: the system trust store"
    )
    tls_verify: bool = Field(
        default=True, description="verify the server certificate and host name (keep on)"
    )
    tls_strict: bool = Field(
        default=True,
        description="strict X.509 checks (Python's VERIFY_X509_STRICT, the default since "
        "3.13) with the ldap3 backend; false accepts e.g. a certificate without an "
        "Authority Key Identifier (Samba's own). Verification stays on either way",
    )
    allow_plaintext: bool = Field(
        default=False,
        description="allow ldap:// without StartTLS (the password and roster travel in clear)",
    )
    backend: Literal["auto", "ldap3", "python-ldap"] = Field(
        default="auto", description="auto: python-ldap (C libldap) when installed, else ldap3"
    )
    connect_timeout: Duration = Field(default=10.0, description="per server in the url list")
    timeout: Duration = Field(
        default=120.0, description="longest wait for one page of results (receive timeout)"
    )
    page_size: int = Field(
        default=DEFAULT_PAGE_SIZE, ge=1, le=100_000,
        description="entries per page; AD serves at most 1000 (MaxPageSize). A server that "
        "refuses the size (OpenLDAP size.pr) is asked again with smaller pages")
    base_dn: str | list[str]
    scope: Literal["subtree", "one"] = "subtree"
    filter: str | None = Field(default=None, description="default: the preset's user filter")
    groups: list[str] = Field(
        default_factory=list, description="only members of these group DNs (any of them)"
    )
    exclude_groups: list[str] = Field(
        default_factory=list, description="members of these group DNs are left out"
    )
    nested_groups: bool = True
    group_lookup: Literal["auto", "in-chain", "member"] = Field(
        default="auto",
        description="in-chain: AD's memberOf:1.2.840.113556.1.4.1941: rule on the server; "
        "member: expand the groups' member attribute here; auto: in-chain for AD",
    )
    member_attribute: str = Field(default="member", description="e.g. uniqueMember")
    include_disabled: bool = Field(default=False, description="keep disabled/locked accounts")
    disabled_filter: str | None = Field(
        default=None, description="matches DISABLED accounts; default: the preset's rule"
    )
    referrals: Literal["fail", "ignore"] = Field(
        default="fail",
        description="a search reference (referral) fails the read unless 'ignore'",
    )
    multi_value: Literal["first", "join"] = Field(
        default="first", description="first: the first value the server returns; join: all, sorted"
    )
    join_separator: str = Field(default=";", min_length=1)
    binary_attributes: dict[str, Literal["guid", "sid", "hex", "base64"]] = Field(
        default_factory=dict,
        description="render these binary attributes; objectGUID and objectSid are built in",
    )

    @field_validator("filter", "disabled_filter")
    @classmethod
    def _filter_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_filter(value)

    @field_validator("ca_file")
    @classmethod
    def _ca_file_ok(cls, value: Path | None) -> Path | None:
        # Checked here, not at connect time: a missing CA file is a config problem
        # (exit 2, named by `validate`), not a directory that cannot be read.
        if value is not None:
            ca_file_problem(value)
        return value

    @field_validator("groups", "exclude_groups")
    @classmethod
    def _group_dns_ok(cls, value: list[str]) -> list[str]:
        split_dn_problem(value, every=True)
        return value

    @field_validator("base_dn")
    @classmethod
    def _base_dns_ok(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            split_dn_problem(value, every=False)
        return value

    @field_validator("binary_attributes")
    @classmethod
    def _lower_keys(
        cls, value: dict[str, Literal["guid", "sid", "hex", "base64"]]
    ) -> dict[str, Literal["guid", "sid", "hex", "base64"]]:
        return {k.lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _transport_and_secret(self) -> LdapSourceConfig:
        if not self.urls:
            raise ValueError("url: give at least one ldaps:// or ldap:// URL")
        for url in self.urls:
            problem = url_problem(url, self.start_tls, self.allow_plaintext)
            if problem:
                raise ValueError(problem)
        if self.bind_password is not None and self.bind_password_file is not None:
            raise ValueError("give bind_password or bind_password_file, not both")
        if self.bind_dn and self.bind_password is None and self.bind_password_file is None:
            raise ValueError("bind_dn needs bind_password or bind_password_file")
        if not self.bind_dn and (self.bind_password or self.bind_password_file):
            raise ValueError("bind_password is set but bind_dn is not")
        if not self.base_dns:
            raise ValueError("base_dn: give at least one base DN")
        return self

    # -- derived values (what the source uses) --------------------------------------

    @property
    def urls(self) -> list[str]:
        return [u.strip().rstrip("/") for u in _as_list(self.url) if u.strip()]

    @property
    def base_dns(self) -> list[str]:
        return [b.strip() for b in _as_list(self.base_dn) if b.strip()]

    @property
    def user_filter(self) -> str:
        """The preset's object-class filter, ANDed with the admin's `filter`.

        Never replaced: with in-chain group scope a custom `(mail=*)` alone would
        also match a mail-enabled group nested in the scope group.
        """
        preset = PRESET_FILTERS[self.preset]
        if not self.filter:
            return preset
        inner = preset[2:-1] if preset.startswith("(&") else preset
        return f"(&{inner}{self.filter})"

    @property
    def effective_disabled_filter(self) -> str | None:
        """Filter matching disabled accounts, or None when they are kept."""
        if self.include_disabled:
            return None
        return self.disabled_filter or PRESET_DISABLED_FILTERS[self.preset]

    @property
    def effective_group_lookup(self) -> Literal["in-chain", "member"]:
        if self.group_lookup != "auto":
            return self.group_lookup
        return "in-chain" if self.preset == "active-directory" else "member"


def ca_file_problem(path: Path) -> None:
    """Raise ValueError unless `path` is a readable file holding a PEM certificate."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a PEM file") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def split_dn_problem(values: list[str], *, every: bool) -> None:
    """Catch a DN that YAML split at its commas: `[CN=g,OU=Groups,DC=corp]` unquoted.

    A group DN always has several parts (`every`); a list of base DNs is
    suspicious when two or more items are single parts.
    """
    single = [(i, v) for i, v in enumerate(values) if "," not in v and "=" in v]
    if single and (every or len(single) > 1):
        index, value = single[0]
        raise ValueError(
            f"item {index} ({value!r}) is not a whole DN. In a YAML flow list [a, b] an "
            "unquoted DN is split at its commas: quote each DN (\"CN=...,OU=...,DC=...\") or write "
            "one per line as a block list (- CN=...)")


def url_problem(url: str, start_tls: bool, allow_plaintext: bool) -> str | None:
    """Why this URL may not be used, or None. Shared by config validation and the source."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if "@" in rest.split("/", 1)[0]:
        # Not repeated: the part before @ is a credential.
        return ("url: must not contain a user name or password (user:password@); use bind_dn "
                "and bind_password_file")
    if not sep or scheme not in ("ldap", "ldaps") or not rest:
        return f"url {url!r}: expected ldaps://host[:port] or ldap://host[:port]"
    if "/" in rest or "?" in rest:
        return f"url {url!r}: give only scheme, host and port; put the base DN in base_dn"
    if scheme == "ldaps" and start_tls:
        return f"url {url!r}: start_tls is for ldap:// URLs; ldaps:// is already encrypted"
    if scheme == "ldap" and not start_tls and not allow_plaintext:
        return (f"url {url!r} is plain LDAP: the bind password and the roster would travel "
                "unencrypted. Use ldaps://, or set start_tls: true, or (test setups only) "
                "allow_plaintext: true")
    return None
