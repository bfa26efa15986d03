"""The HTTP client MSAL talks to the identity provider through: bounded waits, typed failures.

MSAL applies no timeout of its own when given an ``http_client`` and turns a provider fault into
``requests`` exceptions, ``ValueError`` (an HTML body) or a 5xx answer it caches and replays for
``Retry-After`` seconds (its ``ThrottledHttpClient``). ``ProviderSession`` answers all of them
before MSAL sees them:

- every request carries (connect, read) timeouts from ``EntraConfig.http_timeout``;
- a connection failure, a timeout, a 429 or a 5xx raises ``ProviderUnavailableError`` (503) with
  the host, the step under way, the cause in words and the provider's ``Retry-After``;
- a 200 whose body is not JSON raises ``ProviderResponseError`` (502).

Raising instead of returning the 5xx also means MSAL's throttle never caches it: once the
provider is back, the next request goes through (the user was told "try again in N seconds").
``provider_step`` names the step for errors raised inside it.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from .._http import cause_of, retry_after_seconds
from ..errors import ProviderResponseError, ProviderUnavailableError

_STEP: contextvars.ContextVar[str] = contextvars.ContextVar("entra_provider_step", default="")

# What the user reads, by step: in words, no jargon, nothing from the provider's answer.
_DOING = {
    "discovery": "reading the sign-in service's settings",
    "sign-in start": "starting the sign-in",
    "code redemption": "completing the sign-in",
    "silent refresh": "renewing your access",
    "consent": "asking for the new permission",
    "Graph": "reading your profile from Microsoft Graph",
    "sign-out": "signing you out",
    "app token": "getting this app's access token",
    "on-behalf-of": "getting a token for a service this one calls for you",
}


@contextmanager
def provider_step(step: str) -> Iterator[None]:
    """Name ``step`` on every provider error raised inside (the operator's log says where)."""
    token = _STEP.set(step)
    try:
        yield
    except ProviderUnavailableError as exc:
        if not exc.step:
            exc.step = step
        raise
    finally:
        _STEP.reset(token)


def current_step() -> str:
    return _STEP.get()


class ProviderRequestFailed(ProviderUnavailableError, requests.ConnectionError):
    """The provider unavailable, raised inside MSAL: also a ``requests.RequestException`` so
    MSAL keeps its own fallback (an access token past its ``refresh_on`` but not expired is
    returned from the cache when the refresh fails on the network)."""


def unavailable(
    host: str,
    cause: str,
    *,
    step: str | None = None,
    retry_after: int | None = None,
) -> ProviderRequestFailed:
    step = step if step is not None else current_step()
    doing = _DOING.get(step, "talking to the sign-in service")
    wait = f" Try again in {retry_after} seconds." if retry_after else " Try again in a moment."
    return ProviderRequestFailed(
        f"The sign-in service (Microsoft Entra ID) is not available right now, so {doing} "
        f"could not be done.{wait} Nothing was lost.",
        remedy=f"Try again in {retry_after or 'a few'} seconds.",
        retry_after=retry_after,
        host=host,
        step=step,
        cause=cause,
    )


def bad_response(host: str, cause: str, *, step: str | None = None) -> ProviderResponseError:
    step = step if step is not None else current_step()
    doing = _DOING.get(step, "talking to the sign-in service")
    return ProviderResponseError(
        f"The sign-in service (Microsoft Entra ID) gave an answer this app cannot read, so "
        f"{doing} could not be done. Nothing was lost.",
        host=host,
        step=step,
        cause=cause,
    )


class ProviderSession(requests.Session):
    """A ``requests.Session`` for MSAL: timeouts on every request, provider faults typed."""

    def __init__(self, *, timeout: float, ca_bundle: str | None = None):
        super().__init__()
        self.timeout = timeout
        if ca_bundle:
            self.verify = ca_bundle
            self.trust_env = False  # REQUESTS_CA_BUNDLE must not override the bundle

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        # Connect fails fast on a dead host; read gets the whole budget (a slow token endpoint).
        kwargs.setdefault("timeout", (min(self.timeout, 3.05), self.timeout))
        # Never follow a redirect: requests re-sends a POST body (the client secret, the code, the
        # PKCE verifier) on 307/308 to wherever Location points, http and other hosts included.
        kwargs["allow_redirects"] = False
        target = url.decode() if isinstance(url, bytes) else str(url)
        host = urlsplit(target).netloc
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            raise unavailable(host, cause_of(exc, self.timeout)) from None
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            response.close()
            said = f", Retry-After {wait} s" if wait is not None else ""
            raise unavailable(host, f"HTTP {status}{said}", retry_after=wait)
        if 300 <= status < 400:
            response.close()
            raise bad_response(host, f"HTTP {status}: a redirect, not followed")
        # Every provider answer MSAL reads is JSON, errors included (RFC 6749 §5.2); MSAL
        # would raise a bare ValueError on anything else (a proxy's HTML 404).
        try:
            json.loads(response.content)
        except (ValueError, RecursionError):
            kind = response.headers.get("Content-Type", "").split(";")[0].strip()[:40]
            raise bad_response(
                host, f"HTTP {status} not JSON ({kind or 'no content type'})"
            ) from None
        except requests.RequestException as exc:
            raise unavailable(host, cause_of(exc, self.timeout)) from None
        return response
