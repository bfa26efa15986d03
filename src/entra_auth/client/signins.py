"""Which sessions (and token caches) each identity-provider sign-in opened, by its ``sid``:
front-channel sign-out for every web adapter, framework-free.

Front-channel sign-out (OpenID Connect Front-Channel Logout 1.0, as Entra ID does it) names
the IdP's sign-in session, not ours, and arrives in a hidden frame that carries no cookie of
ours (SameSite), possibly on another instance. So each sign-in is recorded under its ``sid``
in the session store itself (Redis, or beside the session files), and ending a ``sid`` deletes
its sessions and token caches at once and leaves a mark, checked on every signed-in request,
for a request that was in flight and saved its session after the deletion.

Keys are a hash of the ``sid`` (never the ``sid`` itself), and live as long as a session. The
adapter says how a session is deleted (``delete_session``) and gives either its Redis client or
a small key-value ``cache`` (``get``/``set(key, value, timeout=)``) for one process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import msgspec

from ..discovery import ProviderMetadata

MAX_SESSIONS_A_SIGN_IN = 20  # kept per sid without Redis: the newest (a browser signs in again)


class KeyValueCache(Protocol):
    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


class SignInIndex:
    def __init__(
        self,
        *,
        delete_session: Callable[[str], object],
        ttl: int,
        redis: Any = None,
        cache: KeyValueCache | None = None,
    ) -> None:
        if (redis is None) == (cache is None):
            raise ValueError("SignInIndex keeps its records in Redis or in a cache: one of them.")
        self._delete_session = delete_session
        self._redis, self._cache = redis, cache
        self._ttl = max(int(ttl), 1)

    @staticmethod
    def _key(sid: str) -> str:
        digest = hashlib.sha256(f"entra-auth sign-in {sid}".encode("utf-8", "surrogatepass"))
        return "entra:signin:" + digest.hexdigest()

    def record(self, sid: str, *, session_id: str, cache_key: str | None, issuer: str) -> None:
        """A session signed in through ``sid`` (called at sign-in, after the new session id)."""
        key, member = self._key(sid), msgspec.json.encode([session_id, cache_key, issuer])
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.sadd(key + ":sessions", member)
            pipe.expire(key + ":sessions", self._ttl)
            pipe.execute()
            return
        cache = cast(KeyValueCache, self._cache)
        entry = cache.get(key) or {}
        kept = entry.get("sessions", [])[-(MAX_SESSIONS_A_SIGN_IN - 1) :]
        sessions = [*kept, [session_id, cache_key, issuer]]
        cache.set(key, {"sessions": sessions, "ended": entry.get("ended")}, timeout=self._ttl)

    def end(self, sid: str, *, issuer: str | None, now: float) -> int:
        """End every session opened through ``sid`` (of ``issuer``, when the IdP named one).

        Returns how many sessions were deleted. Token caches in Redis go with them."""
        key = self._key(sid)
        if self._redis is not None:
            members = self._redis.smembers(key + ":sessions")
            recorded = [msgspec.json.decode(m) for m in cast("set[bytes]", members)]
        else:
            recorded = list((cast(KeyValueCache, self._cache).get(key) or {}).get("sessions", []))
        if not recorded:
            # No session of ours signed in through it (or it was ended already, its mark
            # kept): nothing is written, so made-up sids from anyone fill no store and evict
            # no record.
            return 0
        mine = [r for r in recorded if issuer is None or r[2] == issuer]
        if not mine:
            return 0  # another issuer's sid: not ours to end
        for session_id, cache_key, _ in mine:
            self._delete_session(session_id)
            if cache_key and self._redis is not None:
                self._redis.delete(cache_key)
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.set(key + ":ended", str(now), ex=self._ttl)
            pipe.delete(key + ":sessions")
            pipe.execute()
        else:
            cast(KeyValueCache, self._cache).set(
                key, {"sessions": [], "ended": now}, timeout=self._ttl
            )
        return len(mine)

    def ended_at(self, sid: str) -> float | None:
        """When ``sid`` was ended by the IdP (None: it was not)."""
        key = self._key(sid)
        if self._redis is not None:
            value = self._redis.get(key + ":ended")
            return float(value) if value is not None else None
        ended = (cast(KeyValueCache, self._cache).get(key) or {}).get("ended")
        return float(ended) if isinstance(ended, (int, float)) else None


def framing_origins(authority: str, known: ProviderMetadata | None) -> str:
    """Who may frame the front-channel route: the origins of the IdP's sign-out page (the
    authority's, its end-session and authorization endpoints'), for ``frame-ancestors``."""
    origins = {_origin(authority)}
    for url in (known.end_session_endpoint, known.authorization_endpoint) if known else ():
        if url:
            origins.add(_origin(url))
    return " ".join(sorted(o for o in origins if o))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


__all__ = ["KeyValueCache", "SignInIndex", "framing_origins"]
