"""Server-side sessions for FastAPI/Starlette sign-in, over starsessions.

starsessions (``SessionMiddleware`` with pluggable stores, a Redis store on redis' asyncio
client, JSON serialization, the session id regenerated on demand) is the maintained library for
the job; what it does not do is written here, each for a reason:

- ``SignedIdStore``: starsessions puts the raw store key in the cookie. The cookie here holds
  ``<random id>.<HMAC>`` with a key derived from the app's secret (as Flask-Session's signer
  does on the Flask side): a cookie the app did not make is refused before any store lookup.
- ``FileStore``: starsessions has no file store (cookie, memory, Redis). One process, no Redis:
  a session is a file of its own (0600, written whole then renamed, removed when it expires),
  read and written in a worker thread so the event loop never waits on the disk.
- ``StrictJsonSerializer``: a stored value that is not a JSON object (a corrupted or planted
  entry) is an empty session, never an exception in every request that carries its cookie.

Redis (``REDIS_URL``) lets several workers and instances share sessions; the token caches live
beside them (``client.redis_cache``: encrypted, one entry per session).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import anyio.to_thread
from starsessions import SessionMiddleware
from starsessions.serializers import Serializer
from starsessions.stores import SessionStore

from ...errors import ConfigurationError, SessionStoreUnavailable

_ID = re.compile(r"[0-9a-f]{32}")  # starsessions' ids: secrets.token_hex(16)


class SignedIdStore(SessionStore):
    """A store whose session ids travel signed: ``<id>.<HMAC-SHA256(id)>`` in the cookie, the
    bare id as the inner store's key. A cookie without a valid signature reads as no session
    (nothing is looked up), and the session it would have named is never written to: a write
    under an id not of our making goes to a new random id instead."""

    def __init__(self, inner: SessionStore, key: bytes):
        self.inner, self._key = inner, key

    def new_id(self) -> str:
        """A new signed session id (256 bits would be no safer: 128 random bits are unguessable,
        and the signature is checked before the store is asked)."""
        bare = secrets.token_hex(16)
        return f"{bare}.{self._mac(bare)}"

    def unsigned(self, value: str | None) -> str | None:
        """The bare id of a signed id, or None when it is not ours."""
        bare, _, mac = (value or "").partition(".")
        if not _ID.fullmatch(bare) or not hmac.compare_digest(mac, self._mac(bare)):
            return None
        return bare

    def _mac(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()[:32]

    async def read(self, session_id: str, lifetime: int) -> bytes:
        bare = self.unsigned(session_id)
        return b"" if bare is None else await self.inner.read(bare, lifetime)

    async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
        signed = session_id if self.unsigned(session_id) is not None else self.new_id()
        bare = self.unsigned(signed)
        assert bare is not None
        await self.inner.write(bare, data, lifetime, ttl)
        return signed

    async def remove(self, session_id: str) -> None:
        bare = self.unsigned(session_id)
        if bare is not None:
            await self.inner.remove(bare)


class FileStore(SessionStore):
    """One file a session under ``directory``, for one process without Redis. Bounded, as the
    Flask side's cachelib store is: at most ``limit`` sessions; a new one beyond it first drops
    the expired, then those nearest expiry (the longest idle users sign in again). Only a
    sign-in makes a session, so it bounds users, not visits."""

    def __init__(self, directory: str | os.PathLike[str], *, limit: int = 10_000):
        self.directory = Path(directory)
        self.limit = limit
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, session_id: str) -> Path:
        if not _ID.fullmatch(session_id):  # only ids of our making become file names
            raise ValueError("Not a session id.")
        return self.directory / f"{session_id}.json"

    async def read(self, session_id: str, lifetime: int) -> bytes:
        try:
            return await anyio.to_thread.run_sync(self._read, session_id)
        except OSError as exc:
            raise _unavailable(exc) from None

    def _read(self, session_id: str) -> bytes:
        path = self._path(session_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return b""
        expires, _, data = raw.partition(b"\n")
        try:
            if float(expires) < time.time():
                path.unlink(missing_ok=True)
                return b""
        except ValueError:
            return b""
        return data

    async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
        try:
            await anyio.to_thread.run_sync(self._write, session_id, data, ttl or lifetime)
        except OSError as exc:
            raise _unavailable(exc) from None
        return session_id

    def _write(self, session_id: str, data: bytes, ttl: int) -> None:
        path = self._path(session_id)
        if not path.exists() and self._count() >= self.limit:
            self._make_room()
        expires = time.time() + (ttl if ttl > 0 else 8 * 3600)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:  # mkstemp makes it 0600
                file.write(f"{expires:.0f}\n".encode() + data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def remove(self, session_id: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(session_id).unlink(missing_ok=True))

    def _count(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json"))

    def _make_room(self) -> None:
        """Room for one more session: the expired go, then those nearest expiry."""
        by_expiry: list[tuple[float, Path]] = []
        now = time.time()
        for path in self.directory.glob("*.json"):
            try:
                with path.open("rb") as file:
                    expires = float(file.readline() or 0)
            except (OSError, ValueError):
                expires = 0.0  # unreadable: first to go
            if expires < now:
                path.unlink(missing_ok=True)
            else:
                by_expiry.append((expires, path))
        by_expiry.sort()
        for _, path in by_expiry[: max(0, len(by_expiry) - self.limit + 1)]:
            path.unlink(missing_ok=True)


class RedisSessionStore(SessionStore):
    """starsessions' ``RedisStore`` on redis' asyncio client, one client per event loop: an
    asyncio connection belongs to the loop that opened it, and a test client (Starlette's
    ``TestClient`` outside a ``with`` block) runs each request in a loop of its own. Bounded
    waits: a down Redis costs a request about a second (then 503), never a hang."""

    def __init__(self, url: str, *, prefix: str = "entra:session:"):
        try:
            from redis.asyncio import Redis
            from starsessions.stores.redis import RedisStore
        except ImportError:
            raise ConfigurationError(
                "REDIS_URL is set, and the redis package is not installed.",
                remedy="pip install 'entra-auth[fastapi,redis]', or unset REDIS_URL to keep "
                "sessions in files.",
            ) from None
        from redis import RedisError

        self.url, self.prefix = url, prefix
        self._redis, self._store = Redis, RedisStore
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionStore] = (
            weakref.WeakKeyDictionary()
        )

    def _current(self) -> SessionStore:
        loop = asyncio.get_running_loop()
        store = self._by_loop.get(loop)
        if store is None:
            client = self._redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
            store = self._by_loop[loop] = self._store(connection=client, prefix=self.prefix)
        return store

    async def read(self, session_id: str, lifetime: int) -> bytes:
        try:
            return await self._current().read(session_id, lifetime)
        except self._errors as exc:
            raise _unavailable(exc) from None

    async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
        try:
            return await self._current().write(session_id, data, lifetime, ttl)
        except self._errors as exc:
            raise _unavailable(exc) from None

    async def remove(self, session_id: str) -> None:
        try:
            await self._current().remove(session_id)
        except self._errors as exc:
            raise _unavailable(exc) from None


def _unavailable(exc: BaseException) -> SessionStoreUnavailable:
    """What the app answers 503 for (never the error's own text: it can hold the URL)."""
    return SessionStoreUnavailable(f"The session store is unavailable ({type(exc).__name__}).")


class JsonFileCache:
    """A small key-value cache in files (``get``/``set(key, value, timeout=)``): the
    front-channel index beside the session files of one process (``client.signins``)."""

    def __init__(self, directory: str | os.PathLike[str], *, limit: int = 20_000):
        self.directory = Path(directory)
        self.limit = limit  # past it, a new entry first sweeps the expired ones
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, key: str) -> Any:
        try:
            entry = json.loads(self._path(key).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(entry, dict) or float(entry.get("expires", 0)) < time.time():
            return None
        return entry.get("value")

    def set(self, key: str, value: Any, timeout: int | None = None) -> None:
        path = self._path(key)
        if not path.exists() and sum(1 for _ in self.directory.glob("*.json")) >= self.limit:
            for old in self.directory.glob("*.json"):
                self.get_path(old)  # removes it when expired
        entry = {"expires": time.time() + (timeout or 8 * 3600), "value": value}
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(json.dumps(entry).encode())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get_path(self, path: Path) -> Any:
        """The entry in ``path``; an expired or unreadable one is removed."""
        try:
            entry = json.loads(path.read_bytes())
            expired = not isinstance(entry, dict) or float(entry.get("expires", 0)) < time.time()
        except (OSError, ValueError):
            entry, expired = None, True
        if expired:
            path.unlink(missing_ok=True)
            return None
        return entry.get("value")


class StrictJsonSerializer(Serializer):
    """JSON, and only a JSON object: anything else read from the store is an empty session."""

    def serialize(self, data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode()

    def deserialize(self, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data) if data else {}
        except ValueError:
            return {}
        if not isinstance(value, dict):
            return {}
        if not isinstance(value.get("__metadata__", {}), dict):
            value.pop("__metadata__")
        return value


def session_middleware_options(
    store: SignedIdStore, *, secure: bool, lifetime: int
) -> dict[str, Any]:
    """``app.add_middleware(SessionMiddleware, **options)``: hardened cookies. Over https the
    cookie is ``__Host-``: no sibling domain or plain-http page can plant it (HX05)."""
    return {
        "store": store,
        "serializer": StrictJsonSerializer(),
        "cookie_name": "__Host-entra_session" if secure else "entra_session",
        "cookie_https_only": secure,
        "cookie_same_site": "lax",
        "cookie_path": "/",
        "lifetime": lifetime,
        "rolling": True,
    }


__all__ = [
    "FileStore",
    "JsonFileCache",
    "RedisSessionStore",
    "SessionMiddleware",
    "SignedIdStore",
    "StrictJsonSerializer",
    "session_middleware_options",
]
