"""GraphClient: Microsoft Graph with a user's (or an app's) token, framework-free.

One ``DownstreamApi`` (``DownstreamApi.graph``) bound to one token source, with the shape the
web adapters' ``graph()`` has always had (``me``, ``get``, ``paged``): timeouts on every call;
``Retry-After`` honoured on 429/503 within a bounded retry budget; ``@odata.nextLink`` followed
only on Graph's own host (the token never goes elsewhere); typed errors for 401 and 403. Given
a signed-in user's token source (``EntraAuth``: anything with ``get_token(scopes, claims=)``),
a claims challenge (Continuous Access Evaluation) is met as ``DownstreamApi`` meets it: one
new token with the claims, else the user through the sign-in page once. Nothing here logs a
token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from ..errors import GraphAuthError, GraphError
from .downstream import DownstreamApi, DownstreamCall, UserTokens, signed_in_user

DEFAULT_GRAPH = "https://graph.microsoft.com"


class _GivenIdentity:
    """A token (or a function giving one per request) from elsewhere: a claims challenge
    cannot be met with it, and says so at once."""

    def __init__(self, token: str | Callable[[], str]):
        self._token = token

    def token(self, claims: str | None) -> str:
        if claims is not None:
            raise self.unmet(claims)
        return self._token() if callable(self._token) else self._token

    async def token_async(self, claims: str | None) -> str:
        return self.token(claims)

    def unmet(self, claims: str) -> Exception:
        return GraphAuthError(
            "Microsoft Graph asks for a newer or stronger sign-in (a claims challenge), which "
            "a token given as it is cannot meet.",
            status=401,
            graph_code="insufficient_claims",
            remedy="Give GraphClient the web adapter (EntraAuth) rather than a token, or "
            "acquire a new token with the claims (MSAL: claims_challenge=...).",
        )


class GraphClient:
    def __init__(
        self,
        token: str | Callable[[], str] | UserTokens,
        *,
        base_url: str = DEFAULT_GRAPH,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        scopes: tuple[str, ...] = ("User.Read",),
    ):
        self.base_url = base_url.rstrip("/")
        self.api = DownstreamApi.graph(
            base_url=self.base_url,
            scopes=scopes,
            session=session or requests.Session(),
            timeout=timeout,
            max_retries=max_retries,
            max_wait=max_wait,
            sleep=sleep,
        )
        if isinstance(token, UserTokens):
            self._call = DownstreamCall(self.api, signed_in_user(token, scopes))
        else:
            self._call = DownstreamCall(self.api, _GivenIdentity(token))

    def me(self) -> dict[str, Any]:
        return self.get("/v1.0/me")

    def get(self, path_or_url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        body = self._call.get(path_or_url, params=params)
        if not isinstance(body, dict):
            raise GraphError("Microsoft Graph answered with an unexpected body.", status=502)
        return body

    def paged(self, path: str, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` (``limit`` items at most)."""
        url: str | None = path
        count = 0
        while url:
            page = self.get(url)
            for item in page.get("value", []):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            link = page.get("@odata.nextLink")
            url = link if isinstance(link, str) else None
