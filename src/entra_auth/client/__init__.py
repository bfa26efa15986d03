"""Token acquisition over MSAL: the sign-in flow, per-user token caches, Microsoft Graph."""

from __future__ import annotations

from .graph import GraphClient
from .signin import SignedIn, SignInFlow, safe_return_path
from .token_cache import MappingTokenCacheStore, TokenCacheStore, user_token_cache

__all__ = [
    "GraphClient",
    "MappingTokenCacheStore",
    "SignInFlow",
    "SignedIn",
    "TokenCacheStore",
    "safe_return_path",
    "user_token_cache",
]
