"""JWT checks and RSA test keys for the stand-ins' token endpoints (Entra, Okta, Google)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_rsa_key() -> tuple[str, bytes]:
    """A fresh RSA key: (private key PEM text as an admin downloads it, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _padding(alg: object) -> padding.AsymmetricPadding | None:
    if alg == "RS256":
        return padding.PKCS1v15()
    if alg == "PS256":
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                           salt_length=padding.PSS.DIGEST_LENGTH)
    return None


def verify_jwt(assertion: str, key: object,
               algorithms: tuple[str, ...] = ("RS256",)) -> dict[str, Any] | None:
    """The claims of a current JWT signed by the RSA `key` with one of `algorithms`,
    else None. The header's `kid` is kept as the claim `_kid`."""
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    alg = header.get("alg")
    pad = _padding(alg) if alg in algorithms else None
    if pad is None or not isinstance(key, rsa.RSAPublicKey):
        return None
    try:
        key.verify(signature, f"{header_b64}.{payload_b64}".encode(), pad, hashes.SHA256())
    except InvalidSignature:
        return None
    if float(claims.get("exp", 0)) <= time.time():
        return None
    claims["_kid"] = header.get("kid")
    return claims


def verify_rs256(assertion: str, public_pem: bytes) -> dict[str, Any] | None:
    """The claims of a current RS256 JWT signed by the key (PEM), else None."""
    return verify_jwt(assertion, serialization.load_pem_public_key(public_pem))
