"""Credentials for the Google source (google-auth) from the configured key file.

Two kinds of file, as the Cloud console and `gcloud iam workload-identity-pools
create-cred-config` write them: a service-account key (`type:
service_account`, impersonating `subject` through domain-wide delegation) or
an external-account file (`type: external_account`, workload identity
federation; the service account it becomes needs a Workspace admin role, as
domain-wide delegation would need its private key). google.* is imported
inside functions: loading the config must not pay for it.
"""

from __future__ import annotations

import json
from typing import Any

from syncd.log import register_secret_lines
from syncd.sources.google.config import SCOPES, GoogleSourceConfig


class CredentialSetupError(Exception):
    """The key file cannot be used (unreadable, not JSON, wrong type, missing fields)."""


def read_key_file(config: GoogleSourceConfig) -> dict[str, Any]:
    """The key file's JSON, read on every run (a rotated key applies without a restart)."""
    path = config.credentials_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialSetupError(f"credentials_file: cannot read {path}: {exc.strerror}"
                                   ) from None
    except UnicodeDecodeError:
        raise CredentialSetupError(f"credentials_file: {path} is not UTF-8 text") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        # Never quote the text: it holds a private key.
        raise CredentialSetupError(
            f"credentials_file: {path} is not JSON (line {exc.lineno}); download the key "
            "again (IAM > Service accounts > Keys > Add key > JSON)") from None
    if not isinstance(info, dict):
        raise CredentialSetupError(f"credentials_file: {path} is not a JSON object")
    return info


def secrets_of(info: dict[str, Any]) -> tuple[str, ...]:
    """The secret values in a key file, registered for masking in every log event; the
    same ones are scrubbed from the source's error text."""
    key = info.get("private_key")
    if not isinstance(key, str) or not key:
        return ()
    return register_secret_lines(key)


def build_credentials(config: GoogleSourceConfig, info: dict[str, Any]) -> Any:
    """google-auth credentials with the two read-only scopes (and `subject` for delegation)."""
    kind = info.get("type")
    path = config.credentials_file
    if kind == "service_account":
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(SCOPES), subject=config.subject)
        except (ValueError, KeyError) as exc:
            # google-auth names missing fields; a bad PEM gives a message without the key.
            detail = str(exc).split("\n")[0][:200]
            raise CredentialSetupError(f"credentials_file: {path} is not a usable "
                                       f"service-account key ({detail})") from None
    if kind == "external_account":
        if config.subject is not None:
            raise CredentialSetupError(
                "subject: domain-wide delegation needs a service-account key file; with an "
                "external-account file give the service account a Workspace admin role "
                "(Admin console > Account > Admin roles) and remove subject")
        import google.auth

        try:
            credentials, _ = google.auth.load_credentials_from_dict(  # type: ignore[no-untyped-call]
                info, scopes=list(SCOPES))
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and kin
            detail = str(exc).split("\n")[0][:200]
            raise CredentialSetupError(f"credentials_file: {path} is not a usable "
                                       f"external-account file ({detail})") from None
        return credentials
    shown = kind if isinstance(kind, str) else "missing"
    raise CredentialSetupError(
        f"credentials_file: {path} has type {shown}; expected a service-account key "
        "(service_account) or a workload identity federation file (external_account)")
