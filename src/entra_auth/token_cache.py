"""Per-user MSAL token caches, persisted server-side.

MSAL's ``SerializableTokenCache`` is the unit: loaded from a store at the start of a request,
written back only when MSAL changed it (``has_state_changed``). The store is a mapping entry
(the server-side session), or with Redis an entry of its own that is:
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

import json
import logging
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, Protocol

import msal
import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigurationError, SessionStoreUnavailable

log = logging.getLogger("entra_auth.token_cache")


class TokenCacheStore(Protocol):
    """Where one user's serialized MSAL cache lives."""

    def load(self) -> str | None: ...

    def save(self, data: str) -> None: ...

    def clear(self) -> None: ...


class MappingTokenCacheStore:
    """A cache kept under ``key`` of a mapping, e.g. the server-side session."""

    def __init__(self, mapping: MutableMapping[str, Any], key: str = "entra_token_cache"):
        self.mapping, self.key = mapping, key

    def load(self) -> str | None:
        value = self.mapping.get(self.key)
        return value if isinstance(value, str) else None

    def save(self, data: str) -> None:
        self.mapping[self.key] = data

    def clear(self) -> None:
        self.mapping.pop(self.key, None)


class TokenCacheCipher:
    """Authenticated encryption of token caches, with key rotation (``ENTRA_TOKEN_CACHE_KEY``)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ConfigurationError(
                "ENTRA_TOKEN_CACHE_KEY is not set, and tokens are never stored unencrypted.",
                remedy="Set ENTRA_TOKEN_CACHE_KEY to a Fernet key (python -c 'from cryptography."
                "fernet import Fernet; print(Fernet.generate_key().decode())'), the same on every "
                "instance; to rotate, put the new key first: NEW,OLD.",
            )
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise ConfigurationError(
                "ENTRA_TOKEN_CACHE_KEY holds a value that is not a Fernet key.",
                remedy="Use keys made by Fernet.generate_key() (32 url-safe base64 bytes), "
                "comma-separated, the newest first.",
            ) from None

    def encrypt(self, data: str) -> bytes:
        return self._fernet.encrypt(data.encode("utf-8"))

    def decrypt(self, blob: bytes) -> str | None:
        """The plaintext, or None when the value does not authenticate under any key."""
        try:
            return self._fernet.decrypt(blob).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            return None


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
        plaintext = self.cipher.decrypt(bytes(blob))  # type: ignore[arg-type]
        data, reason = self._open(plaintext)
        if reason is not None:
            # A reason code only: the value and the keys involved never reach the log.
            log.warning("A stored token cache was discarded (%s); the user signs in again.", reason)
            self.clear()
        return data

    def _open(self, plaintext: str | None) -> tuple[str | None, str | None]:
        """The cache in an envelope written for this key, or None and why it is refused."""
        if plaintext is None:
            return None, "not_authentic"
        try:
            envelope = json.loads(plaintext)
        except ValueError:
            envelope = None
        if not (
            isinstance(envelope, dict)
            and envelope.keys() == {"k", "v"}
            and isinstance(envelope["k"], str)
            and isinstance(envelope["v"], str)
        ):
            return None, "unbound_old_format"
        if envelope["k"] != self.key:
            return None, "written_for_other_key"
        return envelope["v"], None

    def save(self, data: str) -> None:
        blob = self.cipher.encrypt(json.dumps({"k": self.key, "v": data}))
        if len(blob) > self.max_bytes:
            raise SessionStoreUnavailable(
                f"The user's token cache grew past {self.max_bytes} bytes and was not saved.",
                remedy="Ask for fewer resources per user, or raise the bound.",
            )
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


@contextmanager
def user_token_cache(store: TokenCacheStore) -> Iterator[msal.SerializableTokenCache]:
    """The user's cache for the duration of a block; saved back only if MSAL changed it.

    Stores that can lock (Redis) hold the lock from load to save.
    """
    locked = getattr(store, "locked", None)
    guard: AbstractContextManager[Any] = locked() if callable(locked) else nullcontext()
    with guard:
        cache = msal.SerializableTokenCache()
        data = store.load()
        if data:
            cache.deserialize(data)
        yield cache
        if cache.has_state_changed:
            store.save(cache.serialize())
