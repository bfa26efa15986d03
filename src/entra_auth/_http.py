"""The sync transport for documents the library fetches from the identity provider (requests).

One function, ``get_json``, with the limits every such fetch needs: (connect, read) timeouts, no
redirects followed, bodies capped at ``MAX_BODY`` while streaming, and failures as a
``FetchError`` that says what and where. Discovery and key sets both use it; an async transport
(httpx) keeps the same limits for the async adapters.
"""

from __future__ import annotations

import json
from typing import Any

import requests

MAX_BODY = 1024 * 1024


class FetchError(Exception):
    """A discovery document or key set that could not be fetched or trusted (says why)."""


def get_json(
    session: requests.Session, url: str, what: str, *, timeout: float, verify: str | bool
) -> Any:
    """The JSON at ``url``; ``what`` names it in errors ("The key set")."""
    try:
        response = session.get(
            url,
            timeout=(min(timeout, 3.05), timeout),
            allow_redirects=False,
            stream=True,
            verify=verify,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise FetchError(f"{what} at {url} could not be fetched ({type(exc).__name__}).") from None
    with response:
        if response.is_redirect or 300 <= response.status_code < 400:
            raise FetchError(f"{what} at {url} redirects; redirects are not followed.")
        if response.status_code != 200:
            raise FetchError(f"{what} at {url} answered HTTP {response.status_code}.")
        body = b""
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY:
                    raise FetchError(f"{what} at {url} is larger than 1 MiB.")
        except requests.RequestException as exc:
            raise FetchError(f"{what} at {url} broke off ({type(exc).__name__}).") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError(f"{what} at {url} is not JSON.") from None
