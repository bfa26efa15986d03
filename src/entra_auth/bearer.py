"""RFC 6750 bearer-token handling, framework-free: read the header, shape the answers.

Only the ``Authorization`` header is read (tokens in the query string or body are ignored:
RFC 6750 §2.2-2.3 leak them into logs and history). The scheme matches case-insensitively.
Answers carry ``WWW-Authenticate`` and a JSON body; neither ever echoes the token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .challenges import encode_claims, insufficient_claims_header
from .errors import (
    DownstreamApiUnavailableError,
    EntraAuthError,
    InsufficientClaimsError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    OnBehalfOfError,
    ProviderUnavailableError,
)
from .logs import inert

MAX_HEADER_LENGTH = 40 * 1024
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what a quoted error_description may hold


def bearer_token(authorization: Sequence[str], *, check_syntax: bool = True) -> str | None:
    """The token of the request's ``Authorization`` header values; None when there is none.

    Raises ``InvalidRequestError`` for two headers, another scheme, or a malformed value.

    ``check_syntax=False`` leaves the check that the token is an RFC 6750 ``b64token`` to
    ``check_token_syntax``, for a caller that validates the token first and calls it only when
    the token is refused: a token that validates is a compact JWS, whose alphabet (base64url
    and dots) lies inside b64token's, so the check can only fail for a refused token, and the
    answer is the same ``invalid_request``. A hot endpoint then scans each token once, not
    twice (``bench/bench_fastapi.py``: the check is 5% of a cold validation).
    """
    if not authorization:
        return None
    if len(authorization) > 1:
        raise InvalidRequestError(
            "The request has more than one Authorization header.",
            remedy="Send one header: Authorization: Bearer <access token>.",
        )
    value = authorization[0]
    if len(value) > MAX_HEADER_LENGTH:
        raise InvalidRequestError(
            "The Authorization header is too long.", remedy="Send one access token."
        )
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidRequestError(
            "The Authorization header does not use the Bearer scheme.",
            remedy="Send Authorization: Bearer <access token>.",
        )
    token = rest.strip(" ")
    if check_syntax or not token:
        check_token_syntax(token)
    return token


def check_token_syntax(token: str) -> None:
    """Raise ``InvalidRequestError`` unless ``token`` is one RFC 6750 §2.1 ``b64token``."""
    if not token or not _B64TOKEN.fullmatch(token):
        raise InvalidRequestError(
            "The Authorization header does not hold exactly one bearer token.",
            remedy="Send Authorization: Bearer <access token>, with nothing after the token.",
        )


@dataclass(frozen=True)
class Challenge:
    """The HTTP answer to a refused request: status, headers and JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, str] = field(default_factory=dict)


def _quoted(text: str, limit: int = 300) -> str:
    return _UNSAFE.sub("", text.replace('"', "'"))[:limit]


def challenge(error: EntraAuthError | None, *, realm: str = "api") -> Challenge:
    """RFC 6750 §3: ``None`` is "no credentials" (401 with no error code)."""
    params = [f'realm="{_quoted(realm)}"']
    no_store = {"Cache-Control": "no-store"}
    if error is None:
        return Challenge(
            401,
            {"WWW-Authenticate": f"Bearer {', '.join(params)}", **no_store},
            {
                "error": "unauthorized",
                "error_description": "This endpoint needs Authorization: Bearer <access token>.",
            },
        )
    if isinstance(error, ProviderUnavailableError):  # fail closed: 503, or 502 for nonsense
        # The keys or metadata, unless the endpoint's own work (a downstream API, an exchange
        # on the caller's behalf) is what failed.
        checking = not (
            isinstance(error, DownstreamApiUnavailableError) or error.step == "on-behalf-of"
        )
        return Challenge(
            error.http_status,
            {"Retry-After": str(error.retry_after or 30), **no_store},
            {
                "error": "temporarily_unavailable",
                "error_description": "Tokens cannot be checked right now; try again shortly."
                if checking
                else "A service this API depends on is not available right now; try again shortly.",
            },
        )
    if isinstance(error, (InsufficientClaimsError, OnBehalfOfError)):
        return _caller_must_act(error, realm)
    description = error.message
    if isinstance(error, InsufficientScopeError):
        status, code = 403, "insufficient_scope"
        if error.scopes:
            params.append(f'scope="{_quoted(" ".join(error.scopes))}"')
    elif isinstance(error, InvalidRequestError):
        status, code = 401, "invalid_request"
    elif isinstance(error, InvalidTokenError):
        status, code = 401, "invalid_token"
    else:
        status, code = 401, "invalid_token"
        description = "The token could not be validated."
    params[1:1] = [f'error="{code}"', f'error_description="{_quoted(description)}"']
    body = {"error": code, "error_description": description}
    reason = getattr(error, "reason", None)
    if reason:  # a stable code a client can act on (expired, graph_token, wrong_audience...)
        body["reason"] = reason
    if error.remedy:
        body["remedy"] = error.remedy
    return Challenge(
        status,
        {"WWW-Authenticate": f"Bearer {', '.join(params)}", **no_store},
        body,
    )


# What a protected endpoint may raise that its caller can act on (a claims challenge, consent)
# or wait out (Entra unreachable during an on-behalf-of exchange, a downstream API unavailable:
# 503 with Retry-After): every adapter answers these with ``challenge``, never with a 500.
CALLER_ERRORS = (OnBehalfOfError, InsufficientClaimsError, ProviderUnavailableError)


def _caller_must_act(error: InsufficientClaimsError | OnBehalfOfError, realm: str) -> Challenge:
    """What the caller can act on, as Microsoft.Identity.Web answers it.

    Claims (an authentication context this API requires, or what Entra or a downstream API
    demanded when this API called it on the caller's behalf): 401, ``error="insufficient_claims"``
    and the base64 ``claims``, which the caller passes to Entra in a new sign-in (MSAL's
    ``claims_challenge``). Consent this API needs for what it calls (AADSTS65001): 403 with
    ``error="consent_required"``, the downstream ``scopes`` and, when the API knows where its
    consent page is, ``consentUri``. The user must sign in again without claims to ask for: 401
    ``invalid_token``, the caller gets a new token. Anything else (this API's own credential or
    registration is wrong) is no challenge: 500, with nothing to follow (``log_caller_error``
    tells the operator why)."""
    no_store = {"Cache-Control": "no-store"}
    if isinstance(error, OnBehalfOfError) and error.status >= 500:
        return Challenge(
            500,
            no_store,
            {
                "error": "server_error",
                "error_description": "This API could not call what it depends on for you; "
                "its operator's log says why.",
            },
        )
    body = {"error": error.code, "error_description": error.message}
    if error.remedy:
        body["remedy"] = error.remedy
    aadsts = getattr(error, "aadsts", None)
    if aadsts:
        body["aadsts"] = f"AADSTS{aadsts}"
    if error.claims:
        body["error"] = "insufficient_claims"
        body["claims"] = encode_claims(error.claims)
        header = insufficient_claims_header(error.claims, realm=realm, description=error.message)
        return Challenge(401, {"WWW-Authenticate": header, **no_store}, body)
    if isinstance(error, OnBehalfOfError) and error.status == 403:
        params = [
            f'realm="{_quoted(realm)}"',
            'error="consent_required"',
            f'error_description="{_quoted(error.message)}"',
        ]
        if error.scopes:
            params.append(f'scopes="{_quoted(" ".join(error.scopes), 2000)}"')
        if error.consent_uri:
            params.append(f'consentUri="{_quoted(error.consent_uri, 2000)}"')
        params.append('proposedAction="consent"')
        body["error"] = "consent_required"
        if error.consent_uri:
            body["consent_uri"] = error.consent_uri
        return Challenge(403, {"WWW-Authenticate": f"Bearer {', '.join(params)}", **no_store}, body)
    # Sign in again, nothing more precise to ask for: a new token for this API.
    body["error"] = "invalid_token"
    params = [
        f'realm="{_quoted(realm)}"',
        'error="invalid_token"',
        f'error_description="{_quoted(error.message)}"',
    ]
    return Challenge(401, {"WWW-Authenticate": f"Bearer {', '.join(params)}", **no_store}, body)


def log_caller_error(
    logger: logging.Logger, error: EntraAuthError, *, method: str, path: str
) -> None:
    """The operator's record of a protected endpoint's failure that is not the caller's token:
    on-behalf-of refused (WARNING with Entra's AADSTS code when this API's own registration or
    credential is wrong; INFO when the caller must act), a service it depends on unavailable
    (WARNING with host, step and cause). Nothing here holds a token or a claims value."""
    if isinstance(error, ProviderUnavailableError):
        logger.warning(
            "Protected endpoint %s %s: a service it depends on is unavailable (%s, %s: %s)",
            inert(method, 16),
            inert(path),
            inert(error.host),
            inert(error.step, 40),
            inert(error.cause),
        )
        return
    aadsts = getattr(error, "aadsts", None)
    status = getattr(error, "status", 401)
    level = logging.WARNING if status >= 500 else logging.INFO
    logger.log(
        level,
        "Protected endpoint %s %s: %s%s, answered %s",
        inert(method, 16),
        inert(path),
        error.code,
        f" (AADSTS{aadsts})" if aadsts else "",
        status if status >= 500 else "to the caller",
    )


def log_refusal(logger: logging.Logger, error: EntraAuthError, *, method: str, path: str) -> None:
    """The operator's record of one refused request, the same for every adapter.

    One record per refusal (``inert`` keeps an attacker's CR/LF in the path from forging
    others): INFO with the stable reason (``expired``, ``graph_token``…) for a refused token,
    WARNING with host, step and cause when the identity provider is the trouble. ``path`` is
    the request's path without its query string; nothing here ever holds the token.
    """
    level = logging.WARNING if isinstance(error, ProviderUnavailableError) else logging.INFO
    reason = getattr(error, "reason", error.code)
    if isinstance(error, ProviderUnavailableError):  # for the operator: where and why
        reason = f"{error.code} ({inert(error.host)}, {error.step}: {inert(error.cause)})"
    logger.log(level, "Bearer token refused on %s %s: %s", inert(method, 16), inert(path), reason)
