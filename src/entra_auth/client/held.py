"""A token held in memory until MSAL is due to be asked again (``AppTokenProvider``,
``OnBehalfOfProvider``): a cache hit is then a dict lookup, not a cache deserialisation.

The renewal moment is MSAL's own: five minutes before ``expires_in``, or Entra's ``refresh_in``
when it sends one (CAE's long-lived tokens do), whichever comes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RENEW_BEFORE = 300  # seconds before expiry a token is renewed (MSAL's own margin)


@dataclass(frozen=True)
class Held:
    token: str
    renew_at: float  # from then on MSAL is asked again (it renews)
    expires_at: float  # past it the token is never served


def held_from(result: Mapping[str, Any], now: float) -> Held:
    """The access token of MSAL's successful ``result``, with its renewal and expiry times."""
    lifetime = float(result.get("expires_in") or 0)
    renew_in = max(0.0, lifetime - RENEW_BEFORE)
    if result.get("refresh_in"):
        renew_in = min(renew_in, float(result["refresh_in"]))
    return Held(str(result["access_token"]), now + renew_in, now + lifetime)
