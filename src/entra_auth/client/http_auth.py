"""The app's token on an HTTP client's requests: ``httpx.Auth`` (sync and async clients) and a
``requests`` auth. Made by ``AppTokenProvider.httpx_auth(scopes)`` / ``requests_auth(scopes)``.

A 401 answer is the API's, returned as it is: retrying with a new token would make every request
to a misconfigured API (the wrong audience) cost a token request. httpx is needed for
``AppTokenAuth`` only (the ``fastapi`` extra, or ``pip install httpx``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx
import requests

if TYPE_CHECKING:
    from .app_tokens import AppTokenProvider


class AppTokenAuth(httpx.Auth):
    """``Authorization: Bearer <the app's token>`` on every request of an httpx client."""

    requires_response_body = False

    def __init__(self, provider: AppTokenProvider, scopes: tuple[str, ...]):
        self.provider, self.scopes = provider, scopes

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self.provider.get_token(self.scopes)}"
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.provider.get_token_async(self.scopes)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class AppTokenRequestsAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <the app's token>`` on a ``requests`` request or session."""

    def __init__(self, provider: AppTokenProvider, scopes: tuple[str, ...]):
        self.provider, self.scopes = provider, scopes

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.provider.get_token(self.scopes)}"
        return request


__all__ = ["AppTokenAuth", "AppTokenRequestsAuth"]
