"""Claims challenges: read them from a ``WWW-Authenticate`` header, write them for a caller.

A resource that wants more of a token than it got answers 401 with a Bearer challenge whose
``error`` is ``insufficient_claims`` and whose ``claims`` parameter is a base64-encoded OpenID
Connect claims request (Core §5.5): Microsoft Graph under Continuous Access Evaluation after a
user's session was revoked (``{"access_token":{"nbf":{"essential":true,"value":"…"}}}``), an
API requiring an authentication context (``{"access_token":{"acrs":{"essential":true,
"value":"c1"}}}``). The client passes the decoded JSON to Entra (MSAL's ``claims_challenge``).

The header is parsed by hand, after RFC 7235 §4.1 (challenges, ``auth-param`` with token or
``quoted-string`` values, ``token68``): the core imports no web framework (werkzeug's parser is
Flask's), ``requests`` and ``httpx`` parse no ``WWW-Authenticate``, and no maintained package
does only this. Every value read is untrusted: sizes are bounded and a ``claims`` that is not
base64 of a JSON object is no challenge (None), never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_HEADER = 16 * 1024  # longer WWW-Authenticate values are not read
MAX_CLAIMS = 8 * 1024  # the decoded claims request
# RFC 7230 §3.2.6 token, quoted-string; RFC 7235 token68.
_HTTP_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 - a grammar, not a secret
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_HTTP_TOKEN})\s*=\s*({_HTTP_TOKEN}|{_QUOTED})\s*")
_SCHEME = re.compile(rf"\s*({_HTTP_TOKEN})(?:\s+|$)")
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)")
_UNQUOTE = re.compile(r"\\(.)")
_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: its scheme and parameters (names in
    lower case, as RFC 7235 §2.1 makes them case-insensitive)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(values: str | Iterable[str] | None) -> list[Challenge]:
    """Every challenge of one or more ``WWW-Authenticate`` header values, in order.

    What cannot be parsed ends the parse of that value (what was read is kept)."""
    if values is None:
        return []
    found: list[Challenge] = []
    for value in [values] if isinstance(values, str) else values:
        if len(value) <= MAX_HEADER:
            found.extend(_challenges(value))
    return found


def _challenges(value: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    at = 0
    while at < len(value):
        while at < len(value) and value[at] in " \t,":
            at += 1
        scheme = _SCHEME.match(value, at)
        if scheme is None:
            break
        at = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(value, at)
        if token68 is not None and not _PARAM.match(value, at):
            params[""] = token68.group(1)
            at = token68.end()
        else:
            while at < len(value):
                param = _PARAM.match(value, at)
                if param is None:
                    break
                name, raw = param.group(1).lower(), param.group(2)
                params.setdefault(name, _UNQUOTE.sub(r"\1", raw[1:-1]) if raw[0] == '"' else raw)
                at = param.end()
                if at < len(value) and value[at] == ",":
                    after = _PARAM.match(value, at + 1)
                    if after is None:  # the next challenge starts: a scheme, not a param
                        at += 1
                        break
                    at += 1
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def decode_claims(encoded: str | None) -> str | None:
    """The claims request (JSON text) of a challenge's ``claims`` parameter; None if it is not
    base64 (standard or URL-safe, padded or not) of a JSON object."""
    if not encoded or len(encoded) > MAX_CLAIMS * 2:
        return None
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        decoded = raw.decode("utf-8")
        parsed = json.loads(decoded)
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or len(decoded) > MAX_CLAIMS:
        return None
    return decoded


def claims_request(text: object) -> str | None:
    """``text`` if it is a claims request (the JSON text of an object, bounded): what an
    identity provider's error answer may carry as ``claims``; None otherwise."""
    if not isinstance(text, str) or not text or len(text) > MAX_CLAIMS:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return text if isinstance(parsed, dict) else None


def fresh_token_claims(now: int) -> str:
    """The claims request for a token issued at or after ``now`` (epoch seconds): the form
    Graph's Continuous Access Evaluation challenges take, ``{"access_token":{"nbf":
    {"essential":true,"value":"<now>"}}}``; a client meets it only with a fresh sign-in or
    refresh, which a revoked session cannot give silently."""
    request = {"access_token": {"nbf": {"essential": True, "value": str(int(now))}}}
    return json.dumps(request, separators=(",", ":"))


def encode_claims(claims: str) -> str:
    """A claims request as a challenge's ``claims`` parameter: standard base64, as Entra,
    Graph and Microsoft.Identity.Web write it (MSAL.js decodes it with ``atob``)."""
    return base64.b64encode(claims.encode("utf-8")).decode("ascii")


def claims_challenge(values: str | Iterable[str] | None) -> str | None:
    """The claims request of a Bearer ``insufficient_claims`` challenge among ``values`` (the
    ``WWW-Authenticate`` header values of a 401), or None when there is none."""
    for challenge in parse_www_authenticate(values):
        if challenge.scheme != "bearer":
            continue
        if challenge.params.get("error") != "insufficient_claims":
            continue
        claims = decode_claims(challenge.params.get("claims"))
        if claims is not None:
            return claims
    return None


def auth_context_claims(*contexts: str) -> str:
    """The claims request for authentication contexts (``acrs``), as Entra's documentation
    writes it: ``{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`` (``values`` for
    several)."""
    request: dict[str, Any] = {"essential": True}
    if len(contexts) == 1:
        request["value"] = contexts[0]
    else:
        request["values"] = list(contexts)
    return json.dumps({"access_token": {"acrs": request}}, separators=(",", ":"))


def quoted(text: str, limit: int = 300) -> str:
    """``text`` as the inside of an RFC 7230 quoted-string: no quote, backslash or control
    character (each dropped), at most ``limit`` characters."""
    return _QUOTABLE.sub("", text.replace('"', "'"))[:limit]


def insufficient_claims_header(
    claims: str, *, realm: str = "", authorization_uri: str | None = None, description: str = ""
) -> str:
    """The ``WWW-Authenticate`` value asking the caller for ``claims``, in the shape Entra's
    resources use (``realm``, ``authorization_uri``, ``error``, ``claims``) so that MSAL.js,
    Microsoft.Identity.Web's ``WwwAuthenticateParameters`` and this library all read it."""
    params = [f'realm="{quoted(realm)}"']
    if authorization_uri:
        params.append(f'authorization_uri="{quoted(authorization_uri, 2000)}"')
    params.append('error="insufficient_claims"')
    if description:
        params.append(f'error_description="{quoted(description)}"')
    params.append(f'claims="{encode_claims(claims)}"')
    return "Bearer " + ", ".join(params)


__all__ = [
    "Challenge",
    "auth_context_claims",
    "claims_challenge",
    "claims_request",
    "decode_claims",
    "encode_claims",
    "fresh_token_claims",
    "insufficient_claims_header",
    "parse_www_authenticate",
]
