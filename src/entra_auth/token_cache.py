"""Per-user MSAL token caches, persisted server-side.

MSAL's ``SerializableTokenCache`` is the unit: loaded from a store at the start of a request,
written back only when MSAL changed it (``has_state_changed``). The store is any mutable mapping
entry (the server-side session) or, with Redis, a store of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol

import msal


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


@contextmanager
def user_token_cache(store: TokenCacheStore) -> Iterator[msal.SerializableTokenCache]:
    """The user's cache for the duration of a block; saved back only if MSAL changed it."""
    cache = msal.SerializableTokenCache()
    data = store.load()
    if data:
        cache.deserialize(data)
    yield cache
    if cache.has_state_changed:
        store.save(cache.serialize())
