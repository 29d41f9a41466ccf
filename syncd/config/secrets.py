"""Secrets given inline or as a `*_file` path (Kubernetes and compose secrets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

# Config keys that hold a secret or the path of one. Their values never appear in a
# message: a path field is where a secret lands when it is pasted in the wrong key
# (`api_key_file: ${NEBULY_API_KEY}`), so a path is treated as a secret too.
SECRET_KEYS = frozenset({
    "api_key", "api_key_file", "bind_password", "bind_password_file", "client_secret",
    "client_secret_file", "certificate_password", "certificate_password_file",
    "api_token", "api_token_file", "private_key_file", "credentials_file",  # Okta, Google
})
_NOT_SHOWN = ("the path is not shown, in case a secret was put there by mistake; "
              "check the key holds a file path")


def read_secret(inline: SecretStr | None, file: Path | None, field: str) -> str:
    """Resolve a secret given inline or as a `*_file` path.

    Read on every call (not cached) so a rotated Kubernetes Secret mounted as a
    file is picked up by the next run.
    """
    if inline is not None:
        value = inline.get_secret_value()
        if not value:
            raise ValueError(f"{field}: is empty; set it or use {field}_file")
        return value
    if file is None:
        raise ValueError(f"{field}: not set; give {field} or {field}_file")
    try:
        value = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{field}_file: cannot read the file: {exc.strerror} "
                         f"({_NOT_SHOWN})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{field}_file: the file is not UTF-8 text") from None
    if not value:
        raise ValueError(f"{field}_file: the file is empty")
    return value
