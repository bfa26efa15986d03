"""entra-auth: Microsoft Entra ID sign-in, API protection and token acquisition for Python apps.

The public API is what this module exports (``__all__``); every other module is private unless
its own docstring says otherwise. The framework adapters are imported from
``entra_auth.integrations.<framework>`` (each needs its extra), the local Entra ID from
``entra_auth.emulator`` and the test helpers from ``entra_auth.testing``.

Names load on first use (PEP 562): importing the package, as the pytest plugin does in every
project that has entra-auth installed, costs next to nothing. The async key source
(``AsyncJwksCache``, ``AsyncDiscovery``) needs httpx, the ``fastapi`` extra: without it, its
import fails with the ``pip install`` line to run, while the rest of the package (the
``AsyncKeySource`` protocol and ``validate_async`` included) works on a bare install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async_http import AsyncDiscovery, AsyncJwksCache
    from .challenges import claims_challenge
    from .client.app_tokens import AppTokenProvider
    from .client.downstream import DownstreamApi, DownstreamCall
    from .client.graph import GraphClient
    from .client.on_behalf_of import OnBehalfOfProvider
    from .client.signin import SignedIn, SignInFlow
    from .client.token_cache import (
        MappingTokenCacheStore,
        TokenCacheCipher,
        TokenCacheStore,
        user_token_cache,
    )
    from .config import EntraConfig
    from .credentials import ClientCredential, client_credential
    from .discovery import Discovery, ProviderMetadata
    from .errors import (
        AppTokenError,
        ConfigurationError,
        DownstreamApiError,
        DownstreamApiUnavailableError,
        EmulatorError,
        EntraAuthError,
        GraphAuthError,
        GraphError,
        GraphForbiddenError,
        InsufficientClaimsError,
        InsufficientScopeError,
        InteractionRequired,
        InvalidRequestError,
        InvalidTokenError,
        KeySetUnavailableError,
        OnBehalfOfError,
        SessionStoreUnavailable,
        SignInError,
    )
    from .keys import AsyncKeySource, JwksCache, KeySource, SigningKey, StaticKeys
    from .tokens import AccessTokenValidator, IdTokenValidator, Principal

__version__ = "0.1.0"

_WHERE = {
    "AccessTokenValidator": ".tokens",
    "AppTokenError": ".errors",
    "AppTokenProvider": ".client.app_tokens",
    "ClientCredential": ".credentials",
    "client_credential": ".credentials",
    "AsyncDiscovery": "._async_http",
    "AsyncJwksCache": "._async_http",
    "AsyncKeySource": ".keys",
    "ConfigurationError": ".errors",
    "DownstreamApi": ".client.downstream",
    "DownstreamApiError": ".errors",
    "DownstreamApiUnavailableError": ".errors",
    "DownstreamCall": ".client.downstream",
    "InsufficientClaimsError": ".errors",
    "OnBehalfOfError": ".errors",
    "OnBehalfOfProvider": ".client.on_behalf_of",
    "claims_challenge": ".challenges",
    "Discovery": ".discovery",
    "EmulatorError": ".errors",
    "EntraAuthError": ".errors",
    "EntraConfig": ".config",
    "GraphAuthError": ".errors",
    "GraphClient": ".client.graph",
    "GraphError": ".errors",
    "GraphForbiddenError": ".errors",
    "IdTokenValidator": ".tokens",
    "InsufficientScopeError": ".errors",
    "InteractionRequired": ".errors",
    "InvalidRequestError": ".errors",
    "InvalidTokenError": ".errors",
    "JwksCache": ".keys",
    "KeySetUnavailableError": ".errors",
    "KeySource": ".keys",
    "MappingTokenCacheStore": ".client.token_cache",
    "Principal": ".tokens",
    "ProviderMetadata": ".discovery",
    "SessionStoreUnavailable": ".errors",
    "SignInError": ".errors",
    "SignInFlow": ".client.signin",
    "SignedIn": ".client.signin",
    "SigningKey": ".keys",
    "StaticKeys": ".keys",
    "TokenCacheCipher": ".client.token_cache",
    "TokenCacheStore": ".client.token_cache",
    "user_token_cache": ".client.token_cache",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'entra_auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessTokenValidator",
    "AppTokenError",
    "AppTokenProvider",
    "AsyncDiscovery",
    "AsyncJwksCache",
    "AsyncKeySource",
    "ClientCredential",
    "ConfigurationError",
    "Discovery",
    "DownstreamApi",
    "DownstreamApiError",
    "DownstreamApiUnavailableError",
    "DownstreamCall",
    "EmulatorError",
    "EntraAuthError",
    "EntraConfig",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphForbiddenError",
    "IdTokenValidator",
    "InsufficientClaimsError",
    "InsufficientScopeError",
    "InteractionRequired",
    "InvalidRequestError",
    "InvalidTokenError",
    "JwksCache",
    "KeySetUnavailableError",
    "KeySource",
    "MappingTokenCacheStore",
    "OnBehalfOfError",
    "OnBehalfOfProvider",
    "Principal",
    "ProviderMetadata",
    "SessionStoreUnavailable",
    "SignInError",
    "SignInFlow",
    "SignedIn",
    "SigningKey",
    "StaticKeys",
    "TokenCacheCipher",
    "TokenCacheStore",
    "__version__",
    "claims_challenge",
    "client_credential",
    "user_token_cache",
]
