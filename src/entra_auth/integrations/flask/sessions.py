"""Server-side sessions for the Flask integration: Flask-Session, without pickle anywhere.

Flask-Session 0.8 falls back to ``pickle.loads`` on data its msgspec decoders refuse, and its
filesystem backend goes through cachelib, which pickles every value. Session data must never be
unpickled (anyone who can write the store would run code), so both serializers are replaced
here: JSON (msgspec) only, and data that does not decode is no session at all.
The session id in the cookie is random (256 bits) and signed with the app's SECRET_KEY, so a
tampered cookie opens no session.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Generator
from typing import IO, TYPE_CHECKING, Any

import msgspec
from cachelib.file import FileSystemCache
from flask import Flask
from flask_session import Session
from flask_session.base import Serializer, ServerSideSession

from ..._redis import redis_client
from ...client import session as websession
from ...client.signins import SignInIndex
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
    """cachelib's file cache, JSON from its first write (its count file included). Its entries
    are its files: a directory inside it (the sign-in index's) is not one of them, neither
    counted nor evicted."""

    serializer = JsonFileSerializer()  # type: ignore[assignment]

    def _list_dir(self) -> Generator[str, None, None]:
        return (path for path in super()._list_dir() if not os.path.isdir(path))


def store_errors() -> tuple[type[Exception], ...]:
    """What a failing session store raises: ours, and redis-py's when it is installed."""
    try:
        from redis import RedisError
    except ImportError:
        return (SessionStoreUnavailable,)
    return (SessionStoreUnavailable, RedisError)


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
        # users). Redis is the production store.
        limit = websession.session_file_limit(config)
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


def SignInSessions(app: Flask, redis: redis.Redis | None, ttl: int) -> SignInIndex:
    """Front-channel sign-out's index (``entra_auth.client.signins``) over Flask-Session: its
    store ids and deletion are what a session is; records in Redis, or in the session files."""
    interface: Any = app.session_interface

    def delete_session(session_id: str) -> None:
        interface._delete_session(interface._get_store_id(session_id))

    if redis is not None:
        return SignInIndex(delete_session=delete_session, ttl=ttl, redis=redis)
    cache = interface.cache
    # Only in the store made here, whose listing skips the directory (an app's own cachelib
    # cache keeps the index among its entries, as before).
    if isinstance(cache, JsonFileSystemCache):
        # Beside the sessions, not among them: index entries neither count towards the session
        # limit nor are evicted to make room for a session (a lost entry would leave that
        # sign-in's sessions alive after a front-channel sign-out). Bounded at twice the
        # sessions' limit: past it the expired go first.
        cache = JsonFileSystemCache(
            os.path.join(cache._path, "sign-ins"), threshold=2 * cache._threshold, mode=0o600
        )
    return SignInIndex(delete_session=delete_session, ttl=ttl, cache=cache)
