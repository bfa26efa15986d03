"""GraphClient: Microsoft Graph with a user's (or an app's) token, framework-free.

Timeouts on every call; ``Retry-After`` honoured on 429/503 within a bounded retry budget;
``@odata.nextLink`` followed only on Graph's own host (the token never goes elsewhere); typed
errors for 401 and 403. Nothing here logs a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from .._http import cause_of, retry_after_seconds
from ..errors import GraphAuthError, GraphError, GraphForbiddenError, GraphUnavailableError

DEFAULT_GRAPH = "https://graph.microsoft.com"


class GraphClient:
    def __init__(
        self,
        token: str | Callable[[], str],
        *,
        base_url: str = DEFAULT_GRAPH,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._sleep = sleep
        self._origin = urlsplit(self.base_url)._replace(path="", query="", fragment="").geturl()

    def me(self) -> dict[str, Any]:
        return self.get("/v1.0/me")

    def get(self, path_or_url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        url = path_or_url if path_or_url.startswith("https://") else f"{self.base_url}{path_or_url}"
        if not url.startswith(self._origin + "/"):
            raise GraphError(
                "Refusing to send the token to a host other than Microsoft Graph's.",
                status=0,
                remedy="Only follow links that Graph returned for its own host.",
            )
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            token = self._token() if callable(self._token) else self._token
            try:
                response = self._session.get(
                    url,
                    params=params,
                    timeout=self.timeout,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            except requests.RequestException as exc:
                raise GraphUnavailableError(
                    "Microsoft Graph is not available right now (it could not be reached). "
                    "Nothing was lost. Try again in a moment.",
                    host=urlsplit(url).netloc,
                    cause=cause_of(exc, self.timeout),
                ) from None
            if response.status_code in (429, 503) and attempt < self.max_retries:
                wait = _retry_after(response, attempt)
                if waited + wait <= self.max_wait:
                    self._sleep(wait)
                    waited += wait
                    continue
            if response.status_code == 429 or response.status_code >= 500:
                raise _unavailable(response, url)
            if response.status_code >= 400:
                raise _error(response)
            try:
                body = response.json()
            except ValueError:  # an HTML page from a proxy or an outage page
                raise GraphError(
                    "Microsoft Graph answered with something that is not JSON.",
                    status=502,
                    remedy="Try again in a moment; if it persists, check proxies on the way.",
                ) from None
            if not isinstance(body, dict):
                raise GraphError("Microsoft Graph answered with an unexpected body.", status=200)
            return body
        raise GraphError("Microsoft Graph kept throttling.", status=429)  # pragma: no cover

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


def _retry_after(response: requests.Response, attempt: int) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return float(2**attempt)


def _unavailable(response: requests.Response, url: str) -> GraphUnavailableError:
    """429 or 5xx after the retry budget: "try again in N seconds" when Graph said N."""
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    said = f", Retry-After {wait} s" if wait is not None else ""
    again = f"Try again in {wait} seconds" if wait else "Try again in a moment"
    return GraphUnavailableError(
        f"Microsoft Graph is not available right now (busy). Nothing was lost. {again}.",
        status=response.status_code,
        retry_after=wait,
        host=urlsplit(url).netloc,
        cause=f"HTTP {response.status_code}{said}",
    )


def _error(response: requests.Response) -> GraphError:
    try:
        error = response.json().get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "", ""
    status = response.status_code
    if status == 401:
        return GraphAuthError(
            f"Microsoft Graph refused the token: {message or code or 'unauthorized'}.",
            status=status,
            graph_code=code,
            remedy="Request a Graph token (scope User.Read or https://graph.microsoft.com/...).",
        )
    if status == 403:
        return GraphForbiddenError(
            f"Microsoft Graph denied the call: {message or code or 'forbidden'}.",
            status=status,
            graph_code=code,
            remedy="Add the Graph permission to the app registration and consent to it.",
        )
    return GraphError(
        f"Microsoft Graph answered HTTP {status}: {message or code}.",
        status=status,
        graph_code=code,
    )
