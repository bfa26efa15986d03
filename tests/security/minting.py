"""Tokens minted by the test suite itself: with the emulator's key, a foreign key, or none.

Never taken from the library under test. ``raw`` builds a compact JWS from exact segments, so
tests can sign over non-canonical encodings and odd headers.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from entra_auth.emulator import EntraEmulator

from ..helpers import ADELE, API, CONTOSO, WEB

ADELE_OID = "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c"
MEGAN_OID = "1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d"
REMOVE = object()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Mint:
    def __init__(self, emulator: EntraEmulator):
        self.emulator = emulator
        self.key: rsa.RSAPrivateKey = emulator.signing_key.private_key
        self.kid = emulator.signing_key.kid

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "aud": API,
            "iss": self.emulator.issuer(CONTOSO),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": CONTOSO,
            "oid": ADELE_OID,
            "sub": "pairwise-sub-of-adele",
            "scp": "access_as_user",
            "ver": "2.0",
            "azp": WEB,
            "name": "Adele Vance",
            "preferred_username": ADELE,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not REMOVE}

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: Any = None,
        kid: str | object | None = ...,
        alg: str = "RS256",
        headers: dict[str, Any] | None = None,
        **changes: Any,
    ) -> str:
        header: dict[str, Any] = {"typ": "JWT"}
        if kid is not None:
            header["kid"] = self.kid if kid is ... else kid
        header.update(headers or {})
        return jwt.encode(
            claims if claims is not None else self.claims(**changes),
            key if key is not None else self.key,
            algorithm=alg,
            headers=header,
        )

    def raw(
        self,
        header: dict[str, Any] | str,
        payload: dict[str, Any] | str,
        *,
        sign: bool = True,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A token from exact segments; strings are used as given (already encoded)."""
        h = header if isinstance(header, str) else b64(json.dumps(header).encode())
        p = payload if isinstance(payload, str) else b64(json.dumps(payload).encode())
        if not sign:
            return f"{h}.{p}."
        signature = (key or self.key).sign(f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{h}.{p}.{b64(signature)}"

    def header(self, **changes: Any) -> dict[str, Any]:
        base = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not REMOVE}
