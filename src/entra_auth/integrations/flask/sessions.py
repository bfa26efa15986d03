"""Server-side sessions for the Flask integration: Flask-Session, without pickle anywhere.

Flask-Session 0.8 falls back to ``pickle.loads`` on data its msgspec decoders refuse, and its
filesystem backend goes through cachelib, which pickles every value. Session data must never be
unpickled (anyone who can write the store would run code), so both serializers are replaced
here: JSON (msgspec) only, and data that does not decode is no session at all.
The session id in the cookie is random (256 bits) and signed with the app's SECRET_KEY, so a
tampered cookie opens no session.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from typing import IO, TYPE_CHECKING, Any, cast

import msgspec
from cachelib.file import FileSystemCache
from flask import Flask
from flask_session import Session
from flask_session.base import Serializer, ServerSideSession

from ...errors import ConfigurationError, SessionStoreUnavailable

if TYPE_CHECKING:
    import redis

log = logging.getLogger("entra_auth.sessions")


class StrictSessionSerializer(Serializer):  # type: ignore[misc]
    """msgspec JSON, and nothing else: undecodable data is an empty session, never a pickle."""

    def __init__(self) -> None:
        self.encoder = msgspec.json.Encoder()
        self.decoder = msgspec.json.Decoder()

    def encode(self, session: ServerSideSession) -> bytes:
        return self.encoder.encode(dict(session))

    def decode(self, serialized_data: bytes) -> dict[str, Any]:
        try:
            data = self.decoder.decode(serialized_data)
        except msgspec.DecodeError:
            log.warning("A stored session could not be decoded; it is ignored.")
            return {}
        return data if isinstance(data, dict) else {}


class JsonFileSerializer:
    """cachelib's file serializer, with JSON instead of pickle."""

    def dump(self, value: Any, f: IO[bytes], protocol: int | None = None) -> None:
        f.write(msgspec.json.encode(value))

    def load(self, f: IO[bytes]) -> Any:
        try:
            data = msgspec.json.decode(f.read())
        except msgspec.DecodeError:
            log.warning("A stored session file could not be decoded; it is ignored.")
            return None
        # Session dicts, and the integer cachelib keeps as its file count.
        return data if isinstance(data, (dict, int)) and not isinstance(data, bool) else None


class JsonFileSystemCache(FileSystemCache):
    """cachelib's file cache, JSON from its first write (its count file included)."""

    serializer = JsonFileSerializer()  # type: ignore[assignment]


def store_errors() -> tuple[type[Exception], ...]:
    """What a failing session store raises: ours, and redis-py's when it is installed."""
    try:
        from redis import RedisError
    except ImportError:
        return (SessionStoreUnavailable,)
    return (SessionStoreUnavailable, RedisError)


def redis_client(url: str) -> redis.Redis:
    """A client with bounded waits: a down or slow Redis costs a request about a second, and
    redis-py reconnects by itself when it is back."""
    try:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError:
        raise ConfigurationError(
            "REDIS_URL is set, and the redis package is not installed.",
            remedy="pip install 'entra-auth[flask,redis]', or unset REDIS_URL to keep sessions "
            "in files.",
        ) from None
    return redis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
        health_check_interval=15,
    )


def configure_sessions(app: Flask, *, secure: bool) -> redis.Redis | None:
    """Server-side sessions: Redis when ``REDIS_URL`` is set, else files; hardened cookies.

    Returns the Redis client when sessions live in Redis (the token caches use it too)."""
    if not app.secret_key:
        raise ConfigurationError(
            "The Flask app has no SECRET_KEY.",
            remedy="Set app.config['SECRET_KEY'] (e.g. from FLASK_SECRET_KEY) to a long random "
            "value; it signs the session id cookie.",
        )
    redis_url = app.config.get("REDIS_URL") or os.environ.get("REDIS_URL")
    config = app.config
    config.setdefault("SESSION_TYPE", "redis" if redis_url else "cachelib")
    if config["SESSION_TYPE"] == "redis" and config.get("SESSION_REDIS") is None:
        config["SESSION_REDIS"] = redis_client(str(redis_url))
    if config["SESSION_TYPE"] == "cachelib" and config.get("SESSION_CACHELIB") is None:
        directory = config.get("ENTRA_SESSION_DIR") or os.path.join(os.getcwd(), ".flask_session")
        # The file store's bound: past it, cachelib evicts the sessions nearest expiry (signed-in
        # users). Only signed-in users are stored, so it bounds users, not visits. Redis is the
        # production store.
        limit = int(config.get("ENTRA_SESSION_FILE_LIMIT") or 10_000)
        if limit < 1:
            raise ConfigurationError(
                f"ENTRA_SESSION_FILE_LIMIT is {limit}.",
                remedy="Set it to how many signed-in sessions the file store may hold (default "
                "10000), or use Redis (REDIS_URL) in production.",
            )
        config["SESSION_CACHELIB"] = JsonFileSystemCache(
            str(directory), threshold=limit, mode=0o600
        )
    config["SESSION_USE_SIGNER"] = True
    config["SESSION_SERIALIZATION_FORMAT"] = "json"
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_SECURE"] = secure
    if secure:  # __Host-: Secure, Path=/, no Domain (RFC 6265bis 4.1.3.2)
        config["SESSION_COOKIE_NAME"] = "__Host-session"
        config["SESSION_COOKIE_PATH"] = "/"
        config["SESSION_COOKIE_DOMAIN"] = None
    else:
        config.setdefault("SESSION_COOKIE_NAME", "entra_session")
        if config["SESSION_COOKIE_NAME"] == "session":
            config["SESSION_COOKIE_NAME"] = "entra_session"
    with warnings.catch_warnings():
        # Flask-Session marks the id signer deprecated; the signed id is kept until it offers
        # another way to refuse tampered ids without a store lookup.
        warnings.simplefilter("ignore", DeprecationWarning)
        Session(app)
    app.session_interface.serializer = StrictSessionSerializer()  # type: ignore[attr-defined]
    if config["SESSION_TYPE"] != "redis":
        return None
    import redis  # installed: Flask-Session's Redis backend needs it

    client = config.get("SESSION_REDIS")
    return client if isinstance(client, redis.Redis) else None


class SignInSessions:
    """Which sessions (and token caches) each identity-provider sign-in opened, by its ``sid``.

    Front-channel sign-out (OpenID Connect Front-Channel Logout 1.0, as Entra ID does it) names
    the IdP's sign-in session, not ours, and arrives in a hidden frame that carries no cookie of
    ours (SameSite), possibly on another instance. So each sign-in is recorded under its ``sid``
    in the session store itself (Redis, or the session files), and ending a ``sid`` deletes its
    sessions and token caches at once and leaves a mark, checked on every signed-in request, for
    a request that was in flight and saved its session after the deletion.

    Keys are a hash of the ``sid`` (never the ``sid`` itself), and live as long as a session.
    """

    def __init__(self, app: Flask, redis: redis.Redis | None, ttl: int) -> None:
        # Flask-Session's interface: its store ids and deletion are what a session is.
        self._interface: Any = app.session_interface
        self._redis = redis
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
        cache = self._cache()
        entry = cache.get(key) or {}
        sessions = [*entry.get("sessions", [])[-19:], [session_id, cache_key, issuer]]
        cache.set(key, {"sessions": sessions, "ended": entry.get("ended")}, timeout=self._ttl)

    def end(self, sid: str, *, issuer: str | None, now: float) -> int:
        """End every session opened through ``sid`` (of ``issuer``, when the IdP named one).

        Returns how many sessions were deleted. Token caches in Redis go with them."""
        key = self._key(sid)
        if self._redis is not None:
            members = self._redis.smembers(key + ":sessions")
            recorded = [msgspec.json.decode(m) for m in cast("set[bytes]", members)]
        else:
            cache = self._cache()
            recorded = list((cache.get(key) or {}).get("sessions", []))
        mine = [r for r in recorded if issuer is None or r[2] == issuer]
        if recorded and not mine:
            return 0  # another issuer's sid: not ours to end
        for session_id, cache_key, _ in mine:
            self._interface._delete_session(self._interface._get_store_id(session_id))
            if cache_key and self._redis is not None:
                self._redis.delete(cache_key)
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.set(key + ":ended", str(now), ex=self._ttl)
            pipe.delete(key + ":sessions")
            pipe.execute()
        else:
            cache.set(key, {"sessions": [], "ended": now}, timeout=self._ttl)
        return len(mine)

    def ended_at(self, sid: str) -> float | None:
        """When ``sid`` was ended by the IdP (None: it was not)."""
        key = self._key(sid)
        if self._redis is not None:
            value = self._redis.get(key + ":ended")
            return float(value) if value is not None else None
        ended = (self._cache().get(key) or {}).get("ended")
        return float(ended) if isinstance(ended, (int, float)) else None

    def _cache(self) -> FileSystemCache:
        return cast(FileSystemCache, self._interface.cache)
