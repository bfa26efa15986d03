"""Moved: key sources are ``entra_auth.keys``, discovery is ``entra_auth.discovery``.

Kept only while ``tokens.py`` is being reworked; importers use the new modules.
"""

from ._http import MAX_BODY, FetchError
from .discovery import ProviderMetadata, on_authority_host
from .keys import MIN_RSA_BITS, JwksCache, SigningKey

__all__ = [
    "MAX_BODY",
    "MIN_RSA_BITS",
    "FetchError",
    "JwksCache",
    "ProviderMetadata",
    "SigningKey",
    "on_authority_host",
]
