"""The sync transport for documents the library fetches from the identity provider (requests).

One function, ``get_json``, with the limits every such fetch needs: (connect, read) timeouts, no
redirects followed, bodies capped at ``MAX_BODY`` while streaming, and failures as a
``FetchError`` that says what and where. Discovery and key sets both use it; an async transport
(httpx) keeps the same limits for the async adapters.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

import requests

MAX_BODY = 1024 * 1024


class FetchError(Exception):
    """A discovery document or key set that could not be fetched or trusted (says why).

    ``cause`` (our words: DNS, refused, timed out…), ``status`` and ``retry_after`` are for
    the typed errors the callers raise; ``nonsense`` marks an answer that was not JSON (502).
    """

    def __init__(
        self,
        message: str,
        *,
        cause: str = "",
        status: int | None = None,
        retry_after: int | None = None,
        nonsense: bool = False,
    ):
        super().__init__(message)
        self.cause, self.status, self.retry_after = cause or message, status, retry_after
        self.nonsense = nonsense


def retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` in whole seconds (capped at an hour), None when absent or a date."""
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    return max(0, min(seconds, 3600))


def cause_of(exc: BaseException, timeout: float) -> str:
    """A failed request's cause in the operator's words (never the exception's own text, which
    can quote URLs with codes or bodies)."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connecting timed out after {timeout:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS certificate not trusted (or TLS failed)"
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 12:
        chain.append(seen)
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = getattr(seen, "reason", None) or nested or seen.__cause__ or seen.__context__
        if seen in chain:
            break
    for link in chain:
        if isinstance(link, socket.gaierror) or "NameResolution" in type(link).__name__:
            return "DNS name does not resolve"
        if isinstance(link, ssl.SSLError):
            return "TLS certificate not trusted (or TLS failed)"
        if isinstance(link, ConnectionRefusedError) or "ConnectionRefused" in repr(link):
            return "connection refused (nothing listens on that port)"
        if isinstance(link, (ConnectionResetError, BrokenPipeError)):
            return "connection reset by the other side"
        if "RemoteDisconnected" in type(link).__name__ or "IncompleteRead" in type(link).__name__:
            return "connection closed before the answer was complete"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection closed before the answer was complete"
    if "Failed to resolve" in str(exc) or "Name or service not known" in str(exc):
        return "DNS name does not resolve"
    return f"could not connect ({type(exc).__name__})"


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
        cause = cause_of(exc, timeout)
        raise FetchError(f"{what} at {url} could not be fetched: {cause}.", cause=cause) from None
    with response:
        if response.is_redirect or 300 <= response.status_code < 400:
            raise FetchError(f"{what} at {url} redirects; redirects are not followed.")
        if response.status_code != 200:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise FetchError(
                f"{what} at {url} answered HTTP {response.status_code}.",
                cause=f"HTTP {response.status_code}"
                + (f", Retry-After {retry_after} s" if retry_after is not None else ""),
                status=response.status_code,
                retry_after=retry_after,
            )
        body = b""
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY:
                    raise FetchError(f"{what} at {url} is larger than 1 MiB.")
        except requests.RequestException as exc:
            cause = cause_of(exc, timeout)
            raise FetchError(f"{what} at {url} broke off: {cause}.", cause=cause) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError(
            f"{what} at {url} is not JSON.", cause="the answer is not JSON", nonsense=True
        ) from None
