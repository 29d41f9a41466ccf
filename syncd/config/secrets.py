"""Secrets given inline or as a `*_file` path (Kubernetes and compose secrets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


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
        raise ValueError(f"{field}_file: cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{field}_file: {file} is not UTF-8 text") from None
    if not value:
        raise ValueError(f"{field}_file: {file} is empty")
    return value
