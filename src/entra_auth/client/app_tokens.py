"""The app's own access tokens (client credentials, or a managed identity), sync and async.

``AppTokenProvider(config).get_token("api://<api>/.default")`` is what a daemon, a job or an API
calling another API as itself needs: MSAL acquires the token (``acquire_token_for_client`` with
the app's one credential, ``entra_auth.credentials``; MSAL's ``ManagedIdentityClient`` for a
managed identity) and keeps it in its cache; this module adds what MSAL leaves to its caller:

- **one token request for many callers**: the token is remembered per scope until it is due
  for renewal, so a cache hit costs a dict lookup; a miss takes a per-scope lock (threads) or a
  per-scope ``asyncio.Lock`` (coroutines), so 100 concurrent callers make one POST;
- **renewed before it expires**: five minutes before ``expires_in`` (or MSAL's ``refresh_in``
  when Entra sends one), as MSAL itself renews; a failed renewal keeps serving the token while
  it is still valid;
- **``Retry-After`` honoured**: after a 429/5xx with ``Retry-After``, no request for that scope
  until it has passed (the still-valid token is served, else the same ``ProviderUnavailableError``
  at once);
- **several workers** may share one encrypted token cache (``cache_store``: the Redis store
  the web side uses, locked from load to save across instances), so a fleet asks once per
  expiry rather than once per process;
- **errors in the library's family**: ``AppTokenError`` with the AADSTS catalogue's meaning
  and fix (AADSTS700016, 7000215, 7000222, 1002012, 700027 …), ``ProviderUnavailableError``
  when Entra cannot be reached. The token, the secret and the assertion are never logged.

``httpx_auth(scopes)`` and ``requests_auth(scopes)`` put the token on a client's requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msal
import requests

from ..config import EntraConfig
from ..credentials import ClientCredential, client_credential
from ..errors import AppTokenError, ConfigurationError, ProviderUnavailableError
from ..logs import redact_logger
from .held import Held, held_from
from .http import ProviderSession, provider_step
from .per_loop import PerLoop
from .signin import confidential_app, error_from
from .token_cache import TokenCacheStore, user_token_cache

if TYPE_CHECKING:
    import httpx


class AppTokenProvider:
    """The app's access tokens for ``<resource>/.default`` scopes, from MSAL's cache.

    ``config``: the app's settings (``EntraConfig.from_env()`` when omitted): the authority, the
    client id and one credential (a secret, a certificate, a federated assertion) or
    ``ENTRA_MANAGED_IDENTITY``. ``cache_store``: a token cache shared by several workers
    (``RedisTokenCacheStore``); by default each process keeps its own in memory.
    """

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        cache_store: TokenCacheStore | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ):
        config = config or EntraConfig.from_env()
        self._clock = clock
        self.config = config
        self.credential: ClientCredential = client_credential(config)
        if self.credential.kind != "managed_identity":
            config.require("client_id")
        for name in ("msal.token_cache", "msal.application", "msal.oauth2cli.oauth2"):
            redact_logger(name)
        self._http: requests.Session = session or ProviderSession(
            timeout=config.http_timeout, ca_bundle=config.ca_bundle
        )
        self._http_cache: dict[Any, Any] = {}
        self._store = cache_store
        self._memory_cache = msal.TokenCache()
        self._msal: Any = None  # built on first use: MSAL reads the discovery document then
        self._held: dict[tuple[str, ...], Held] = {}
        self._blocked: dict[tuple[str, ...], tuple[float, ProviderUnavailableError]] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._async_locks: PerLoop[dict[tuple[str, ...], asyncio.Lock]] = PerLoop(dict)

    # -- tokens ---------------------------------------------------------------------------------
    def get_token(self, scopes: str | Sequence[str]) -> str:
        """An access token for ``scopes`` (one ``<resource>/.default``): from memory while it is
        fresh, else from MSAL (its cache, or one token request for every waiting caller)."""
        key = _scopes(scopes)
        held = self._fresh(key)
        if held is not None:
            return held
        with self._lock_for(key):
            held = self._fresh(key)
            if held is not None:
                return held
            return self._acquire(key)

    async def get_token_async(self, scopes: str | Sequence[str]) -> str:
        """``get_token`` for coroutines: a cache hit without leaving the event loop; MSAL's
        request (synchronous) in a worker thread, one per scope however many coroutines wait."""
        key = _scopes(scopes)
        held = self._fresh(key)
        if held is not None:
            return held
        async with self._async_lock_for(key):
            held = self._fresh(key)
            if held is not None:
                return held
            return await asyncio.to_thread(self.get_token, key)

    def httpx_auth(self, scopes: str | Sequence[str]) -> httpx.Auth:
        """An ``httpx.Auth`` sending the app's token for ``scopes`` (sync and async clients)."""
        from .http_auth import AppTokenAuth

        return AppTokenAuth(self, _scopes(scopes))

    def requests_auth(self, scopes: str | Sequence[str]) -> requests.auth.AuthBase:
        """A ``requests`` auth sending the app's token for ``scopes``."""
        from .http_auth import AppTokenRequestsAuth

        return AppTokenRequestsAuth(self, _scopes(scopes))

    # -- inside ---------------------------------------------------------------------------------
    def _fresh(self, key: tuple[str, ...]) -> str | None:
        held = self._held.get(key)
        if held is None:
            return None
        now = self._clock()
        if now < held.renew_at:
            return held.token
        blocked = self._blocked.get(key)
        if blocked is not None and now < blocked[0] and now < held.expires_at:
            return held.token  # the provider asked us to wait; the token is still good
        return None

    def _lock_for(self, key: tuple[str, ...]) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _async_lock_for(self, key: tuple[str, ...]) -> asyncio.Lock:
        locks = self._async_locks.get()
        with self._locks_lock:
            return locks.setdefault(key, asyncio.Lock())

    def _acquire(self, key: tuple[str, ...]) -> str:
        now = self._clock()
        blocked = self._blocked.get(key)
        if blocked is not None and now < blocked[0]:
            held = self._held.get(key)
            if held is not None and now < held.expires_at:
                return held.token
            raise blocked[1]  # honoured: no request before Retry-After has passed
        try:
            with provider_step("app token"):
                result = self._request(list(key))
        except ProviderUnavailableError as exc:
            if exc.retry_after:
                self._blocked[key] = (self._clock() + exc.retry_after, exc)
            held = self._held.get(key)
            if held is not None and self._clock() < held.expires_at:
                return held.token  # renewal failed; the token has minutes left
            raise
        self._blocked.pop(key, None)
        if "access_token" not in result:
            raise error_from(
                result,
                AppTokenError,
                "Entra ID refused the app's token request.",
                "Check the app's credential and the scope (<API App ID URI>/.default).",
            )
        self._held[key] = fresh = held_from(result, self._clock())
        return fresh.token

    def _request(self, scopes: list[str]) -> dict[str, Any]:
        if self.credential.kind == "managed_identity":
            client = self._client()
            resource = scopes[0].removesuffix("/.default")
            return dict(client.acquire_token_for_client(resource=resource))
        if self._store is None:
            return dict(self._client().acquire_token_for_client(scopes))
        with user_token_cache(self._store) as cache:  # locked from load to save (Redis)
            return dict(self._client(cache).acquire_token_for_client(scopes))

    def _client(self, cache: msal.TokenCache | None = None) -> Any:
        if cache is None and self._msal is not None:
            return self._msal
        if self.credential.kind == "managed_identity":
            client: Any = msal.ManagedIdentityClient(
                self.credential.managed_identity(),
                http_client=self._http,
                token_cache=self._memory_cache,
            )
        else:
            client = confidential_app(
                self.config,
                self.credential.msal_credential(),
                cache=cache or self._memory_cache,
                http=self._http,
                http_cache=self._http_cache,
                capabilities=False,  # no claims challenge could be met: see confidential_app
            )
        if cache is None:
            self._msal = client
        return client


def _scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """One ``<resource>/.default`` scope, as the client credentials grant takes (AADSTS1002012
    otherwise): said here, before a request, with the fix."""
    items = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    items = tuple(s.strip() for s in items if s and s.strip())
    if len(items) != 1 or not items[0].endswith("/.default"):
        shown = " ".join(items) or "nothing"
        raise ConfigurationError(
            f"An app token is asked for {shown!r}.",
            remedy="Ask for one scope, the API's App ID URI followed by /.default "
            "(api://<API client id>/.default, https://graph.microsoft.com/.default): an app's "
            "token carries the app roles an admin granted it, not scopes it names.",
        )
    return items


__all__ = ["AppTokenProvider"]
