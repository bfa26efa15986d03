"""The sign-ins a browser has started and not finished, kept in that browser's own cookie.

Nothing is stored server-side for a visitor who is not signed in: an anonymous request that
wrote a server-side session would let anyone fill the session store (HX04), and a pre-sign-in
session id planted in a victim's browser would carry the attacker's flow to the callback (HX05).
So the MSAL flow (state, nonce, PKCE verifier, scopes), the page to return to and the states
already used travel in one short-lived cookie, sealed with Fernet (AES-CBC + HMAC-SHA256 from
``cryptography``): the browser can neither read the PKCE verifier nor change anything, and a
flow older than ``max_age`` is gone. Framework-free: each web adapter only reads and writes the
cookie. The key is derived (HKDF) from the app's own secret, so no new setting is needed.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken

from .derive import derive_key

# What acquire_token_by_auth_code_flow reads from MSAL's flow; auth_uri is not kept (it is
# already used, and it is the longest member).
_FLOW_KEYS = ("state", "redirect_uri", "scope", "code_verifier", "nonce", "claims_challenge")
MAX_COOKIE_BYTES = 3800  # browsers keep at least 4096 bytes per cookie, name included


class PendingFlow(msgspec.Struct, frozen=True):
    """One sign-in under way: MSAL's flow, where to go after it, and when it began."""

    flow: dict[str, Any]
    return_to: str
    interaction: bool
    started: float


class _Sealed(msgspec.Struct):
    flows: dict[str, PendingFlow] = {}
    used: list[str] = []


@dataclass
class PendingSignIns:
    """The browser's sign-ins under way (by state) and the states it recently completed."""

    flows: dict[str, PendingFlow] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)

    def add(
        self, flow: Mapping[str, Any], *, return_to: str, interaction: bool, now: float
    ) -> None:
        kept = {k: flow[k] for k in _FLOW_KEYS if flow.get(k) is not None}
        self.flows[str(flow["state"])] = PendingFlow(kept, return_to, interaction, now)

    def take(self, state: str) -> PendingFlow | None:
        """The flow for ``state``, removed (a response is redeemed once) and remembered as used."""
        found = self.flows.pop(state, None)
        if found is not None:
            self.used = [*self.used[-4:], state_fingerprint(state)]
        return found

    def was_used(self, state: str) -> bool:
        return state_fingerprint(state) in self.used

    def __bool__(self) -> bool:
        return bool(self.flows or self.used)


def state_fingerprint(state: str) -> str:
    """A short hash of an OAuth `state`: what is remembered of a used one (never the state)."""
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class PendingSignInCookie:
    """Seals and opens the pending-sign-in cookie's value.

    ``max_age`` bounds each flow (and the cookie); ``max_flows`` the sign-ins one browser may
    have under way at once (several tabs), the oldest dropped first.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        max_age: int = 600,
        max_flows: int = 3,
        clock: Callable[[], float] = time.time,
    ):
        key = derive_key(secret, "entra-auth pending sign-in")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.max_age, self.max_flows, self._clock = max_age, max_flows, clock
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(_Sealed)

    @staticmethod
    def attributes(*, secure: bool) -> dict[str, Any]:
        """The cookie's attributes (every adapter's ``set_cookie``/``delete_cookie``): the
        whole site, https-only over https, out of scripts' reach, and ``SameSite=Lax``: sent on
        the IdP's top-level redirect back, not on cross-site POSTs."""
        return {"path": "/", "secure": secure, "httponly": True, "samesite": "lax"}

    def open(self, value: str | None) -> PendingSignIns:
        """What the cookie holds; nothing when it is missing, expired, altered or malformed."""
        if not value or len(value) > 2 * MAX_COOKIE_BYTES:
            return PendingSignIns()
        now = self._clock()
        try:
            data = self._fernet.decrypt_at_time(value, self.max_age, int(now))
            sealed = self._decoder.decode(data)
        except (InvalidToken, msgspec.DecodeError, msgspec.ValidationError, ValueError):
            return PendingSignIns()
        flows = {s: f for s, f in sealed.flows.items() if now - f.started <= self.max_age}
        return PendingSignIns(flows=flows, used=list(sealed.used[-5:]))

    def seal(self, pending: PendingSignIns) -> str:
        """The cookie's value: the newest flows that fit."""
        flows = sorted(pending.flows.items(), key=lambda item: item[1].started)
        flows = flows[-self.max_flows :]
        while True:
            data = self._encoder.encode(_Sealed(flows=dict(flows), used=pending.used[-5:]))
            value = self._fernet.encrypt_at_time(data, int(self._clock())).decode("ascii")
            if len(value) <= MAX_COOKIE_BYTES or not flows:
                return value
            flows = flows[1:]
