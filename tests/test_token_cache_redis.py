"""The Redis token-cache store: encrypted, rotating keys, tamper-evident, bounded, locked."""

from __future__ import annotations

import socket
import threading
from functools import partial
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from entra_auth.client.redis_cache import RedisTokenCacheStore
from entra_auth.client.token_cache import TokenCacheCipher, user_token_cache
from entra_auth.errors import ConfigurationError, SessionStoreUnavailable

from .helpers import HANG_GUARD, within

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def store(url: str, keys: list[str], **kwargs: object) -> RedisTokenCacheStore:
    return RedisTokenCacheStore(
        redis.Redis.from_url(url),
        "entra:tokens:t1",
        TokenCacheCipher(keys),
        ttl=60,
        **kwargs,  # type: ignore[arg-type]
    )


def test_values_are_encrypted_and_keys_rotate(redis_url: str) -> None:
    old = store(redis_url, [OLD])
    old.save('{"RefreshToken": {"x": {"secret": "rt-plaintext-value"}}}')
    raw = redis.Redis.from_url(redis_url).get("entra:tokens:t1")
    assert raw is not None
    assert b"rt-plaintext-value" not in raw
    rotated = store(redis_url, [NEW, OLD])
    assert "rt-plaintext-value" in (rotated.load() or "")  # old entries still read
    rotated.save('{"v": 2}')
    assert store(redis_url, [NEW]).load() == '{"v": 2}'  # new writes use the new key
    assert store(redis_url, [OLD]).load() is None  # ...which the old key alone cannot read


def test_tampered_value_is_refused_and_removed(redis_url: str) -> None:
    target = store(redis_url, [NEW])
    target.save('{"v": 1}')
    client = redis.Redis.from_url(redis_url)
    blob = bytearray(client.get("entra:tokens:t1") or b"")
    blob[40] ^= 1
    client.set("entra:tokens:t1", bytes(blob))
    assert target.load() is None
    assert client.get("entra:tokens:t1") is None


def test_ttl_slides_and_size_is_bounded(redis_url: str) -> None:
    target = store(redis_url, [NEW])
    target.save('{"v": 1}')
    client = redis.Redis.from_url(redis_url)
    client.expire("entra:tokens:t1", 5)
    target.load()
    assert client.ttl("entra:tokens:t1") > 50
    small = store(redis_url, [NEW], max_bytes=200)
    with pytest.raises(SessionStoreUnavailable, match="grew past"):
        small.save("x" * 500)


def test_missing_or_bad_key_fails_at_start() -> None:
    with pytest.raises(ConfigurationError, match="ENTRA_TOKEN_CACHE_KEY"):
        TokenCacheCipher([])
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        TokenCacheCipher(["not-a-key"])


class WatchedRedis(redis.Redis):
    """A client that says when one of its lock attempts (``SET ... NX``) was refused."""

    refused: threading.Event

    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        result = super().set(name, value, *args, **kwargs)
        if kwargs.get("nx") and not result:
            self.refused.set()
        return result


def test_the_lock_serialises_load_to_save(redis_url: str) -> None:
    # The lock's own expiry (10 s by default) would let the second in on a machine that stalls
    # that long between two lines: here it outlasts the hang guard instead.
    first = store(redis_url, [NEW], lock_timeout=2 * HANG_GUARD)
    watched = WatchedRedis.from_url(redis_url)
    watched.refused = threading.Event()
    second = RedisTokenCacheStore(
        watched, "entra:tokens:t1", TokenCacheCipher([NEW]), ttl=60, lock_timeout=2 * HANG_GUARD
    )
    order: list[str] = []
    first_in, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with user_token_cache(first):
            order.append("first in")
            first_in.set()
            let_go.wait(HANG_GUARD)
            order.append("first out")

    def contend() -> None:
        with user_token_cache(second):
            order.append("second in")

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert first_in.wait(HANG_GUARD)
    contender = threading.Thread(target=contend, daemon=True)
    contender.start()
    # The second store asked for the lock while the first held it, and was refused...
    assert watched.refused.wait(HANG_GUARD)
    assert order == ["first in"]  # ...so it is waiting, not inside
    let_go.set()
    holder.join(HANG_GUARD)
    contender.join(HANG_GUARD)
    assert not holder.is_alive()
    assert not contender.is_alive()
    assert order == ["first in", "first out", "second in"]


def test_redis_down_is_a_visible_error() -> None:
    # "Down": a loopback port this test holds bound but not listening, so every connection is
    # refused, and no other process can start listening there while the test runs.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        target = store(f"redis://127.0.0.1:{port}/0", [NEW])
        with pytest.raises(SessionStoreUnavailable):
            within(HANG_GUARD, target.load)
        with pytest.raises(SessionStoreUnavailable):
            within(HANG_GUARD, partial(target.save, "{}"))
