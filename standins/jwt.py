"""JWT checks and RSA test keys for the stand-ins' token endpoints (Okta, Google, Entra)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Jwt:
    """A JWT taken apart (its signature not checked yet)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes
    signed: bytes  # what the signature covers: "<header>.<claims>" as sent

    @property
    def current(self) -> bool:
        return float(self.claims.get("exp", 0)) > time.time()


def parse_jwt(assertion: str) -> Jwt | None:
    """The parts of a compact JWT, or None when it is not one."""
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return Jwt(header, claims, signature, f"{header_b64}.{payload_b64}".encode())


def verify_rs256(assertion: str, public_pem: bytes) -> dict[str, Any] | None:
    """The claims of a current RS256 JWT signed by the key, else None."""
    jwt = parse_jwt(assertion)
    if jwt is None or jwt.header.get("alg") != "RS256":
        return None
    header, claims = jwt.header, jwt.claims
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    try:
        key.verify(jwt.signature, jwt.signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return None
    if not jwt.current:
        return None
    claims["_kid"] = header.get("kid")
    return claims
