"""entra-auth for FastAPI and Starlette: ``EntraAuth`` signs users in, ``ApiProtector``
protects an API.

Needs the ``fastapi`` extra: ``pip install 'entra-auth[fastapi]'``. Unit-test helpers are in
``entra_auth.integrations.fastapi.testing``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
    import jinja2  # noqa: F401
    import starsessions  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"entra_auth.integrations.fastapi needs FastAPI, httpx, starsessions and Jinja2 "
        f"({exc.name} is missing): "
        "pip install 'entra-auth[fastapi]'"
    ) from exc

from ...client.session import AnonymousUser, SignedInUser
from ...tokens import Principal
from .api import ApiProtector, BearerRefused, Requirement, WebSocketBearerRefused
from .login import EntraAuth, PageResponse, SignInRequired
from .openapi import EntraOpenAPI, entra_openapi
from .starlette import (
    BearerAuthenticationError,
    BearerAuthenticationMiddleware,
    EntraAuthBackend,
    PrincipalUser,
)

__all__ = [
    "AnonymousUser",
    "ApiProtector",
    "BearerAuthenticationError",
    "BearerAuthenticationMiddleware",
    "BearerRefused",
    "EntraAuth",
    "EntraAuthBackend",
    "EntraOpenAPI",
    "PageResponse",
    "Principal",
    "PrincipalUser",
    "Requirement",
    "SignInRequired",
    "SignedInUser",
    "WebSocketBearerRefused",
    "entra_openapi",
]
