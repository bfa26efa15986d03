"""One session's MSAL token cache as an entry of its own in Redis (the ``redis`` extra).

- encrypted at rest with ``cryptography``'s Fernet (AES-CBC + HMAC-SHA256, authenticated);
  ``MultiFernet`` rotates keys: new writes use the first key, entries under older keys still
  read. A value that does not authenticate is refused (and removed), never used;
- bound to its Redis key: Fernet has no associated data, so the plaintext is an envelope
  ``{"k": <redis key>, "v": <cache>}``. An entry copied under another session's key, or one
  written before the binding, is discarded there (the user signs in again), never used;
- locked (a short Redis lock) from load to save, so two requests of one user refreshing at once
  cannot lose the newer refresh token (MSAL rotates them; the last writer would otherwise win);
- bounded in size, and expiring with a sliding TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

try:
    import redis
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        "entra_auth.client.redis_cache needs redis: pip install 'entra-auth[redis]'"
    ) from exc

from ..errors import SessionStoreUnavailable
from .token_cache import TokenCacheCipher

log = logging.getLogger("entra_auth.client.token_cache")


class RedisTokenCacheStore:
    """One session's token cache in Redis: encrypted, locked while in use, bounded, expiring."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        cipher: TokenCacheCipher,
        *,
        ttl: int,
        max_bytes: int = 256 * 1024,
        lock_timeout: float = 10.0,
    ):
        self.client, self.key, self.cipher = client, key, cipher
        self.ttl, self.max_bytes, self.lock_timeout = ttl, max_bytes, lock_timeout

    def load(self) -> str | None:
        try:
            blob = self.client.get(self.key)
            if blob is None:
                return None
            self.client.expire(self.key, self.ttl)  # slides with use, like the session
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        data, reason = self.cipher.open_for(self.key, blob)
        if reason is not None:
            # A reason code only: the value and the keys involved never reach the log.
            log.warning("A stored token cache was discarded (%s); the user signs in again.", reason)
            self.clear()
        return data

    def save(self, data: str) -> None:
        blob = self.cipher.seal_for(self.key, data, max_bytes=self.max_bytes)
        try:
            self.client.set(self.key, blob, ex=self.ttl)
        except redis.RedisError as exc:
            raise _unavailable(exc) from None

    def clear(self) -> None:
        try:
            self.client.delete(self.key)
        except redis.RedisError as exc:
            raise _unavailable(exc) from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        lock = self.client.lock(
            f"{self.key}:lock", timeout=self.lock_timeout, blocking_timeout=self.lock_timeout
        )
        try:
            acquired = lock.acquire()
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        if not acquired:
            raise SessionStoreUnavailable("The user's token cache stayed locked too long.")
        try:
            yield
        finally:
            with suppress(redis.RedisError):  # expired meanwhile: nothing held it any more
                lock.release()


def _unavailable(exc: Exception) -> SessionStoreUnavailable:
    return SessionStoreUnavailable(f"The token store is unavailable ({type(exc).__name__}).")
