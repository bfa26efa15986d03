"""The ``claims`` request parameter and the claims challenges the emulator sends back.

A client sends ``claims`` (OpenID Connect Core §5.5, JSON) at the authorize and token endpoints:
MSAL puts its client capabilities there (``{"access_token": {"xms_cc": {"values": ["cp1"]}}}``)
merged with a claims challenge it was handed. Two kinds of challenge matter here (Microsoft Learn,
"Claims challenges, claims requests and client capabilities"):

- an **authentication context** (Conditional Access auth context): ``{"access_token": {"acrs":
  {"essential": true, "value": "c1"}}}``, what an API asks for before a sensitive operation and
  what Entra answers with (AADSTS50076, ``claims`` in its JSON error) when a token request needs a
  step-up the sign-in has not made;
- a **CAE revocation** (continuous access evaluation): ``{"access_token": {"nbf": {"essential":
  true, "value": "<epoch seconds>"}}}``, what Microsoft Graph sends, base64 in its
  ``WWW-Authenticate`` header, for a token issued before the user's sessions were revoked.

Parsing is lenient, as Entra's: a ``claims`` that is not JSON, or asks for nothing known, asks for
nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..challenges import auth_context_claims


def _access_token_part(claims_parameter: str | None) -> dict[str, Any]:
    if not claims_parameter:
        return {}
    try:
        parsed = json.loads(claims_parameter)
    except ValueError:
        return {}
    access = parsed.get("access_token") if isinstance(parsed, dict) else None
    return access if isinstance(access, dict) else {}


def requested_contexts(claims_parameter: str | None) -> tuple[str, ...]:
    """The authentication contexts a ``claims`` parameter asks for (``access_token.acrs``, with
    ``value`` or ``values``), in order, each once."""
    acrs = _access_token_part(claims_parameter).get("acrs")
    if not isinstance(acrs, dict):
        return ()
    values: list[object] = []
    if isinstance(acrs.get("value"), str):
        values.append(acrs["value"])
    if isinstance(acrs.get("values"), list):
        values.extend(acrs["values"])
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def context_challenge(contexts: tuple[str, ...] | list[str]) -> str:
    """The claims challenge for authentication contexts, as Entra writes it (the library's
    ``auth_context_claims``: what an API asks for and what Entra answers with are one text)."""
    return auth_context_claims(*contexts)


def cae_challenge(revoked_at: int) -> str:
    """The CAE claims challenge for tokens issued before ``revoked_at``, base64 as Graph puts it
    in ``WWW-Authenticate``: byte for byte Graph's JSON (a space after the comma, the time a
    string), ``{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}``."""
    text = '{"access_token":{"nbf":{"essential":true, "value":"' + str(int(revoked_at)) + '"}}}'
    return base64.b64encode(text.encode()).decode("ascii")
