"""The user's MSAL token cache in Django's cache framework, and the session engine's deletion
(front-channel sign-out ends sessions it finds by the IdP's ``sid``).

Each signed-in session's cache is an entry of its own, ``entra:tokens:<random id>`` (the id is
kept in the session, sealed with it), in ``CACHES[ENTRA_CACHE_ALIAS]``: RedisCache for several
instances, LocMemCache for one process. As the Redis store of the other adapters
(``entra_auth.client.redis_cache``, which needs redis-py where this needs only Django):

- encrypted with ``TokenCacheCipher`` (Fernet, key rotation), the plaintext an envelope naming
  the entry's key, so an entry copied under another session's key is refused, never used;
- locked from load to save (``cache.add``, atomic on every Django backend that is shared), so
  two requests of one user refreshing at once cannot lose the newer refresh token;
- bounded in size, expiring with the session and sliding with use.

A Django cache unpickles what it reads: like the sessions and everything else an app caches,
the cache must be writable only by the app (Django's own rule for its cache).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ...client import session as websession
from ...errors import SessionStoreUnavailable

if TYPE_CHECKING:
    from ...client.token_cache import TokenCacheCipher
    from .conf import EntraAuth

log = logging.getLogger("entra_auth.django")
TOKEN_KEY_PREFIX = "entra:tokens:"  # noqa: S105 - a cache key prefix, no secret


class DjangoCacheTokenStore:
    """One session's token cache, an entry of a Django cache (``TokenCacheStore``)."""

    def __init__(
        self,
        cache: Any,
        key: str,
        cipher: TokenCacheCipher,
        *,
        ttl: int,
        max_bytes: int = 256 * 1024,
        lock_timeout: float = 10.0,
    ):
        self.cache, self.key, self.cipher = cache, key, cipher
        self.ttl, self.max_bytes, self.lock_timeout = ttl, max_bytes, lock_timeout

    def load(self) -> str | None:
        blob = self._call(self.cache.get, self.key)
        if blob is None:
            return None
        self._call(self.cache.touch, self.key, self.ttl)  # slides with use, as the session
        data, reason = self.cipher.open_for(self.key, blob)
        if reason is not None:
            # A reason code only: the value and the keys involved never reach the log.
            log.warning("A stored token cache was discarded (%s); the user signs in again.", reason)
            self.clear()
        return data

    def save(self, data: str) -> None:
        blob = self.cipher.seal_for(self.key, data, max_bytes=self.max_bytes)
        self._call(self.cache.set, self.key, blob, self.ttl)

    def clear(self) -> None:
        self._call(self.cache.delete, self.key)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held from load to save (``user_token_cache``): one refresh in flight per user."""
        name, mine = f"{self.key}:lock", secrets.token_hex(8)
        deadline = time.monotonic() + self.lock_timeout
        wait = 0.01
        while not self._call(self.cache.add, name, mine, int(self.lock_timeout) + 1):
            if time.monotonic() >= deadline:
                raise SessionStoreUnavailable(
                    "The user's token cache stayed locked too long.",
                    remedy="Try again in a moment; another request of this user is refreshing "
                    "their tokens.",
                )
            time.sleep(wait)  # another request of this user holds it: a refresh takes ~100 ms
            wait = min(wait * 2, 0.2)
        try:
            yield
        finally:
            with suppress(Exception):  # expired meanwhile: nothing to release
                if self.cache.get(name) == mine:
                    self.cache.delete(name)

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except SessionStoreUnavailable:
            raise
        except Exception as exc:  # the backend's own errors (redis-py, pymemcache, the DB)
            raise SessionStoreUnavailable(
                f"The token store is unavailable ({type(exc).__name__}).",
                remedy="Check that the cache of ENTRA_CACHE_ALIAS (CACHES) is reachable from "
                "every instance; the app recovers by itself as soon as it is back.",
            ) from None


def token_store(auth: EntraAuth, cache_id: str) -> DjangoCacheTokenStore:
    return DjangoCacheTokenStore(
        auth.cache, f"{TOKEN_KEY_PREFIX}{cache_id}", auth.cipher, ttl=auth.token_ttl
    )


def session_store(session_key: str | None = None) -> Any:
    """A session of the project's engine (``SESSION_ENGINE``)."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def delete_session(auth: EntraAuth, session_key: str) -> None:
    """End a session by its key, its token cache with it (front-channel sign-out)."""
    store = session_store(session_key)
    cache_id = store.get(websession.CACHE_ID)
    if isinstance(cache_id, str):
        token_store(auth, cache_id).clear()
    store.delete(session_key)


__all__ = ["DjangoCacheTokenStore", "delete_session", "session_store", "token_store"]
