"""Per-user MSAL token caches, persisted server-side.

MSAL's ``SerializableTokenCache`` is the unit: loaded from a store at the start of a request,
written back only when MSAL changed it (``has_state_changed``). A store is a mapping entry (the
server-side session) or, with the ``redis`` extra, an encrypted entry of its own
(``redis_cache.RedisTokenCacheStore``). ``TokenCacheCipher`` is the encryption both could use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

import msal
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import ConfigurationError, SessionStoreUnavailable

log = logging.getLogger("entra_auth.client.token_cache")


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

    # -- an entry bound to its store key --------------------------------------------------------
    # Fernet has no associated data, so the plaintext is an envelope {"k": <key>, "v": <cache>}:
    # an entry copied under another session's key is refused there, never used. Every shared
    # store (Redis, Django's cache) writes and reads its entries through these two.
    def seal_for(self, key: str, data: str, *, max_bytes: int) -> bytes:
        """``data`` encrypted, bound to ``key``; ``SessionStoreUnavailable`` past ``max_bytes``."""
        blob = self.encrypt(json.dumps({"k": key, "v": data}))
        if len(blob) > max_bytes:
            raise SessionStoreUnavailable(
                f"The user's token cache grew past {max_bytes} bytes and was not saved.",
                remedy="Ask for fewer resources per user, or raise the bound.",
            )
        return blob

    def open_for(self, key: str, blob: object) -> tuple[str | None, str | None]:
        """The cache a stored ``blob`` holds for ``key``, or None and why it is refused (a
        reason code for the log: ``not_authentic``, ``unbound_old_format``,
        ``written_for_other_key``)."""
        plaintext = self.decrypt(bytes(blob)) if isinstance(blob, (bytes, bytearray)) else None
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
        if envelope["k"] != key:
            return None, "written_for_other_key"
        return envelope["v"], None


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
