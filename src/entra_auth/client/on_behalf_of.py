"""Tokens for a downstream API on behalf of an API's caller (OAuth 2.0 on-behalf-of).

``OnBehalfOfProvider(config).get_token(principal, ["https://graph.microsoft.com/User.Read"])``
exchanges the access token an API was called with for one to a downstream API, as the same
user (same ``oid``/``tid``). It takes a ``Principal`` that an ``AccessTokenValidator`` made:
only a validated token is ever exchanged (``Principal.token``); an app-only caller has no user
to act for (use ``AppTokenProvider``). MSAL does the exchange
(``acquire_token_on_behalf_of``) and the refreshes; this module adds what MSAL 1.39 leaves out:

- **a cache per caller**: MSAL's OBO call never reads its cache. Each exchange's MSAL cache is
  kept under the user (``tid``, ``oid``) and the SHA-256 of the incoming token, as
  Microsoft.Identity.Web keys it, so a repeat request with that token costs no token POST: the
  access token is served from memory, and near expiry MSAL refreshes it with the exchange's
  refresh token (``acquire_token_silent``). An entry lives as long as the incoming token (no
  request can present it later), bounded in number; ``cache_store`` puts the entries in a
  shared, encrypted store (``RedisTokenCacheStore``) for several instances.
- **one exchange for concurrent requests** with the same token (a lock per entry).
- **failures the caller can act on**, as ``OnBehalfOfError`` with the answer the API gives
  (``bearer.challenge``): Conditional Access, MFA, an authentication context or a revoked
  session (CAE) → 401 with the ``claims`` to sign in with; consent missing (AADSTS65001) → 403
  naming the scopes and where to consent; this API's own credential or registration wrong →
  500 for its operator. Entra unreachable → ``ProviderUnavailableError`` (503).
- ``claims`` (a downstream API's claims challenge) goes to Entra with the exchange, past the
  cache, as MSAL's ``claims_challenge``; ``ENTRA_CLIENT_CAPABILITIES=CP1`` declares CAE.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlencode

import msal
import requests

from .. import aadsts
from ..challenges import claims_request, fresh_token_claims
from ..config import EntraConfig
from ..credentials import client_credential
from ..errors import AppTokenError, ConfigurationError, OnBehalfOfError
from ..logs import redact_logger
from ..tokens import Principal
from .held import Held, held_from
from .http import ProviderSession, provider_step
from .per_loop import PerLoop
from .signin import OIDC_SCOPES, confidential_app, error_from
from .token_cache import TokenCacheStore, user_token_cache

# Entra's answers that only the user can get past: MFA (50076, 50079), Conditional Access
# (53003, 50158, 530032…), a sign-in too old or revoked (50133, 50173, 70043), a session policy.
_USER_MUST_SIGN_IN = frozenset(
    {50076, 50079, 50158, 53000, 53001, 53003, 530032, 50133, 50173, 70043, 50078, 50097}
)
_CONSENT = frozenset({65001, 65004, 90008})
# The sign-in behind the caller's token is over: revoked (50173), its session invalid (50133),
# too old for the sign-in frequency policy (70043).
_SESSION_GONE = frozenset({50173, 50133, 70043})
# The caller's token itself cannot be exchanged (expired, not for this API): it needs a new one.
_CALLERS_TOKEN_REFUSED = frozenset({50013, 50027})


class _Entry:
    """One exchange's state: its lock, and its MSAL cache when kept in memory."""

    __slots__ = ("__weakref__", "data", "expires_at", "lock")

    def __init__(self, expires_at: float) -> None:
        self.lock = threading.Lock()
        self.data: str | None = None
        self.expires_at = expires_at


class _EntryStore:
    """``TokenCacheStore`` over an in-memory entry."""

    def __init__(self, entry: _Entry):
        self.entry = entry

    def load(self) -> str | None:
        return self.entry.data

    def save(self, data: str) -> None:
        self.entry.data = data

    def clear(self) -> None:
        self.entry.data = None


class _MetadataOnlyCache(MutableMapping[Any, Any]):
    """MSAL's ``http_cache``, keeping only what it fetched with GET (the provider's metadata,
    read once per process rather than per exchange).

    MSAL also keeps there, for 60 seconds, every HTTP 400 answer to a POST (its "UI required"
    throttle) and replays it for an identical request: a caller who was just told to consent
    (AADSTS65001) and did, or whose admin just granted consent, would be refused again from
    that memory with the same token. Without those entries each exchange reaches Entra. (The
    429/5xx throttle has nothing to keep: ``ProviderSession`` raises before MSAL sees one.)
    The keys are MSAL's ("GET <url> …", "POST <url> …", "_index_"), read in its
    ``throttled_http_client``."""

    def __init__(self) -> None:
        self._data: dict[Any, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        if not (isinstance(key, str) and key.startswith("POST ")):
            self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class OnBehalfOfProvider:
    """Downstream tokens on behalf of an API's callers, for the API's app registration.

    ``config``: the API's settings (``EntraConfig.from_env()`` when omitted): authority, the
    API's client id and its credential (a secret, a certificate, a federated assertion; a
    managed identity cannot do on-behalf-of). ``cache_store(key)``: a shared store for the
    exchange under ``key`` (``entra:obo:<tid>:<oid>:<token hash>``), e.g.
    ``lambda key: RedisTokenCacheStore(redis, key, cipher, ttl=3600)``; by default each process
    keeps up to ``max_entries`` exchanges in memory.
    """

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        cache_store: Callable[[str], TokenCacheStore] | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        max_entries: int = 10_000,
    ):
        config = config or EntraConfig.from_env()
        config.require("authority", "client_id", "credential")
        self.config = config
        self.credential = client_credential(config)
        self._msal_credential = self.credential.msal_credential()  # a managed identity: refused
        for name in ("msal.token_cache", "msal.application", "msal.oauth2cli.oauth2"):
            redact_logger(name)  # MSAL's DEBUG events carry the assertion
        self._http: requests.Session = session or ProviderSession(
            timeout=config.http_timeout, ca_bundle=config.ca_bundle
        )
        self._http_cache = _MetadataOnlyCache()
        self._clock = clock
        self._store_for = cache_store
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._gates: weakref.WeakValueDictionary[str, _Entry] = weakref.WeakValueDictionary()
        # The tokens held per exchange (its key), per downstream scopes; the oldest go first.
        self._held: OrderedDict[str, dict[tuple[str, ...], Held]] = OrderedDict()
        self._lock = threading.Lock()
        self._async_locks: PerLoop[dict[str, asyncio.Lock]] = PerLoop(dict)

    # -- tokens ---------------------------------------------------------------------------------
    def get_token(
        self, caller: Principal, scopes: str | Sequence[str], *, claims: str | None = None
    ) -> str:
        """An access token for ``scopes`` (one downstream API's) as ``caller``'s user.

        ``claims``: the downstream API's claims challenge, sent to Entra past the cache."""
        key, wanted = self._key(caller), _scopes(scopes)
        if claims is None:
            held = self._fresh(key, wanted)
            if held is not None:
                return held
        entry = self._entry(key, caller)
        with entry.lock:
            if claims is None:
                held = self._fresh(key, wanted)
                if held is not None:
                    return held
            return self._acquire(key, entry, caller, wanted, claims)

    async def get_token_async(
        self, caller: Principal, scopes: str | Sequence[str], *, claims: str | None = None
    ) -> str:
        """``get_token`` for coroutines: a held token without leaving the event loop; MSAL in a
        worker thread, once per caller's token however many coroutines wait."""
        key, wanted = self._key(caller), _scopes(scopes)
        if claims is None:
            held = self._fresh(key, wanted)
            if held is not None:
                return held
        async with self._async_lock(key):
            if claims is None:
                held = self._fresh(key, wanted)
                if held is not None:
                    return held
            return await asyncio.to_thread(self.get_token, caller, wanted, claims=claims)

    # -- inside ---------------------------------------------------------------------------------
    @staticmethod
    def _key(caller: Principal) -> str:
        if not isinstance(caller, Principal) or not caller.token:
            raise ConfigurationError(
                "On-behalf-of was given no validated access token.",
                remedy="Pass the Principal the API's protector validated (g.principal, the "
                "FastAPI dependency's value): on-behalf-of exchanges only a token this API "
                "has validated.",
            )
        if caller.app_only:
            raise ConfigurationError(
                "On-behalf-of was asked for an app's own token: there is no user to act for.",
                remedy="Call the downstream API as this app instead (for_app, "
                "AppTokenProvider), or accept only users' tokens on this endpoint.",
            )
        digest = hashlib.sha256(caller.token.encode("utf-8", "surrogatepass")).hexdigest()
        return f"entra:obo:{caller.tid}:{caller.oid}:{digest[:48]}"

    def _fresh(self, key: str, scopes: tuple[str, ...]) -> str | None:
        held = self._held.get(key, {}).get(scopes)
        if held is not None and self._clock() < held.renew_at:
            return held.token
        return None

    def _entry(self, key: str, caller: Principal) -> _Entry:
        exp = caller.claims.get("exp")
        expires_at = float(exp) if isinstance(exp, (int, float)) else self._clock() + 3600
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key) or self._gates.get(key)
            if entry is None:
                entry = _Entry(expires_at)
                self._gates[key] = entry
            if self._store_for is None:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                # Gone with its incoming token (nothing can present it now), or the oldest.
                while self._entries and (
                    len(self._entries) > self._max
                    or next(iter(self._entries.values())).expires_at < now
                ):
                    gone, _ = self._entries.popitem(last=False)
                    self._held.pop(gone, None)
            return entry

    def _async_lock(self, key: str) -> asyncio.Lock:
        locks = self._async_locks.get()
        with self._lock:
            if len(locks) > self._max:
                for name in [k for k, lock in locks.items() if not lock.locked()]:
                    del locks[name]
            return locks.setdefault(key, asyncio.Lock())

    def _acquire(
        self,
        key: str,
        entry: _Entry,
        caller: Principal,
        scopes: tuple[str, ...],
        claims: str | None,
    ) -> str:
        store = self._store_for(key) if self._store_for is not None else _EntryStore(entry)
        assertion = str(caller.token)
        with provider_step("on-behalf-of"), user_token_cache(store) as cache:
            app = self._client(cache)
            result: dict[str, Any] | None = None
            if claims is None:
                accounts = app.get_accounts()
                if accounts:  # the exchange's own tokens: cached, or refreshed with its RT
                    found = app.acquire_token_silent_with_error(list(scopes), accounts[0])
                    result = dict(found) if found and "access_token" in found else None
            if result is None:
                result = dict(
                    app.acquire_token_on_behalf_of(assertion, list(scopes), claims_challenge=claims)
                )
        if "access_token" not in result:
            raise self._refused(result, scopes, claims)
        fresh = held_from(result, self._clock())
        with self._lock:
            self._held.setdefault(key, {})[scopes] = fresh
            self._held.move_to_end(key)
            while len(self._held) > self._max:  # with a shared store, the memory stays bounded
                self._held.popitem(last=False)
        return fresh.token

    def _client(self, cache: msal.TokenCache) -> msal.ConfidentialClientApplication:
        return confidential_app(
            self.config,
            self._msal_credential,
            cache=cache,
            http=self._http,
            http_cache=self._http_cache,
        )

    def _refused(
        self, result: dict[str, Any], scopes: tuple[str, ...], claims: str | None
    ) -> OnBehalfOfError:
        """Entra's refusal as the answer the API gives its caller (see the module docstring)."""
        words = error_from(
            result,
            AppTokenError,
            "Entra ID refused to exchange the caller's token.",
            "Check this API's credential and the downstream scopes.",
        )
        code = aadsts.first_code(result.get("error_codes"), result.get("error_description"))
        suberror = result.get("suberror")
        user_must_act = code in _USER_MUST_SIGN_IN or result.get("error") == "interaction_required"
        # Entra's own claims first; the downstream API's only when the refusal is the user's
        # to meet (a wrong credential during a claims exchange is no claims challenge).
        demanded = claims_request(result.get("claims")) or (claims if user_must_act else None)
        if demanded is None and code in _SESSION_GONE:
            # A revoked or expired sign-in: ask the caller for a token issued from now on, in
            # Continuous Access Evaluation's words, so that its client signs the user in again.
            demanded = fresh_token_claims(int(self._clock()))
        if code in _CONSENT or suberror == "consent_required":
            return OnBehalfOfError(
                f"{words.message} This API needs consent to call {' '.join(scopes)} for the user.",
                status=403,
                scopes=scopes,
                consent_uri=self._consent_uri(scopes),
                remedy="Have the user (or an admin, for the whole tenant) consent to this API's "
                "permissions: open the consent URI, or grant admin consent in the portal (App "
                "registrations → this API → API permissions).",
                aadsts=code,
                code="consent_required",
            )
        if demanded or user_must_act or code in _CALLERS_TOKEN_REFUSED:
            return OnBehalfOfError(
                f"{words.message} The user must sign in again"
                + (" with the claims requested." if demanded else "."),
                status=401,
                scopes=scopes,
                claims=demanded,
                remedy="Acquire a new token for this API with the claims of the challenge "
                "(MSAL: claims_challenge=...) and call again.",
                aadsts=code,
                code="insufficient_claims" if demanded else "interaction_required",
            )
        return OnBehalfOfError(
            words.message, status=500, scopes=scopes, remedy=words.remedy, aadsts=code
        )

    def _consent_uri(self, scopes: tuple[str, ...]) -> str:
        """Entra's authorize URL where the user consents to this API's downstream scopes (the
        ``consentUri`` of Microsoft.Identity.Web's 403)."""
        query: dict[str, str] = {
            "client_id": str(self.config.client_id),
            "response_type": "code",
            "scope": " ".join(["offline_access", "openid", "profile", *scopes]),
            "prompt": "consent",
        }
        if self.config.redirect_uri:
            query["redirect_uri"] = self.config.redirect_uri
        return f"{self.config.authority}/oauth2/v2.0/authorize?{urlencode(query)}"


def _scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    items = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    wanted = tuple(s.strip() for s in items if s and s.strip() and s.strip() not in OIDC_SCOPES)
    if not wanted:
        raise ConfigurationError(
            "On-behalf-of was asked for no scope of a downstream API.",
            remedy="Name the downstream API's scopes: https://graph.microsoft.com/User.Read, "
            "api://<API client id>/<scope>, or <App ID URI>/.default.",
        )
    return wanted


__all__ = ["OnBehalfOfProvider"]
