"""Keys for one purpose each, derived from the app's one secret (HKDF-SHA256, RFC 5869).

The web adapters need several keys (the pending-sign-in cookie, the session seal) and users
should not have to configure each: one ``SECRET_KEY`` and a distinct ``purpose`` per use, so
a value made for one use is never accepted by another.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str | bytes, purpose: str, length: int = 32) -> bytes:
    """A ``length``-byte key for ``purpose`` from ``secret``."""
    if not secret:
        raise ValueError("A key can only be derived from a non-empty secret.")
    raw = secret.encode() if isinstance(secret, str) else secret
    return HKDF(hashes.SHA256(), length, salt=None, info=purpose.encode()).derive(raw)
