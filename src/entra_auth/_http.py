"""The sync transport for documents the library fetches from the identity provider (requests).

One function, ``get_json``, with the limits every such fetch needs: (connect, read) timeouts, no
redirects followed, bodies capped at ``MAX_BODY`` while streaming, and failures as a
``FetchError`` that says what and where. Discovery and key sets both use it.

What does not depend on the HTTP client lives here once, for this transport and the async one
(``_async_http``, httpx): the refusal of a redirect or an error status (``status_error``), the
size cap (``too_large``), the JSON (``json_document``) and the operator's words for a network
failure found in an exception's chain (``cause_in_chain``). Hand-written because no HTTP
client has these limits as one setting: ``requests`` has no body cap and follows redirects by
default, and neither client names a failure's cause without quoting the URL.
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


def cause_in_chain(exc: BaseException) -> str | None:
    """The cause of a network failure in the operator's words, from the exceptions it wraps
    (DNS, refused, reset, TLS, cut off), or None. Shared by both transports: both wrap the
    socket's and ``ssl``'s own exceptions."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 12:
        chain.append(seen)
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        reason = getattr(seen, "reason", None)  # urllib3's wrapped error; ssl's is a string
        wrapped = reason if isinstance(reason, BaseException) else None
        seen = wrapped or nested or seen.__cause__ or seen.__context__
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
    return None


def cause_of(exc: BaseException, timeout: float) -> str:
    """A failed request's cause in the operator's words (never the exception's own text, which
    can quote URLs with codes or bodies)."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connecting timed out after {timeout:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS certificate not trusted (or TLS failed)"
    found = cause_in_chain(exc)
    if found is not None:
        return found
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection closed before the answer was complete"
    if "Failed to resolve" in str(exc) or "Name or service not known" in str(exc):
        return "DNS name does not resolve"
    return f"could not connect ({type(exc).__name__})"


def status_error(what: str, url: str, status: int, retry_after: str | None) -> FetchError | None:
    """The refusal of an answer that is not a 200 (a redirect is never followed: the
    ``Location`` could name any host, http included), or None for a 200."""
    if 300 <= status < 400:
        return FetchError(f"{what} at {url} redirects; redirects are not followed.")
    if status != 200:
        seconds = retry_after_seconds(retry_after)
        return FetchError(
            f"{what} at {url} answered HTTP {status}.",
            cause=f"HTTP {status}" + (f", Retry-After {seconds} s" if seconds is not None else ""),
            status=status,
            retry_after=seconds,
        )
    return None


def too_large(what: str, url: str) -> FetchError:
    """The refusal of a body over ``MAX_BODY`` (checked while it streams in)."""
    return FetchError(f"{what} at {url} is larger than 1 MiB.")


def json_document(body: bytes, what: str, url: str) -> Any:
    """The JSON of a body; an answer that is not JSON is nonsense (502), not absence."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError(
            f"{what} at {url} is not JSON.", cause="the answer is not JSON", nonsense=True
        ) from None


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
        refused = status_error(what, url, response.status_code, response.headers.get("Retry-After"))
        if refused is not None:
            raise refused
        body = b""
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY:
                    raise too_large(what, url)
        except requests.RequestException as exc:
            cause = cause_of(exc, timeout)
            raise FetchError(f"{what} at {url} broke off: {cause}.", cause=cause) from None
    return json_document(body, what, url)
