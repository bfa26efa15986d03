"""entra-auth for FastAPI and Starlette: ``ApiProtector`` protects an API.

Needs the ``fastapi`` extra: ``pip install 'entra-auth[fastapi]'``. Unit-test helpers are in
``entra_auth.integrations.fastapi.testing``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"entra_auth.integrations.fastapi needs FastAPI and httpx ({exc.name} is missing): "
        "pip install 'entra-auth[fastapi]'"
    ) from exc

from ...tokens import Principal
from .api import ApiProtector, BearerRefused, Requirement, WebSocketBearerRefused
from .openapi import EntraOpenAPI, entra_openapi
from .starlette import (
    BearerAuthenticationError,
    BearerAuthenticationMiddleware,
    EntraAuthBackend,
    PrincipalUser,
)

__all__ = [
    "ApiProtector",
    "BearerAuthenticationError",
    "BearerAuthenticationMiddleware",
    "BearerRefused",
    "EntraAuthBackend",
    "EntraOpenAPI",
    "Principal",
    "PrincipalUser",
    "Requirement",
    "WebSocketBearerRefused",
    "entra_openapi",
]
