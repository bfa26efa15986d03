"""The Redis token-cache store: encrypted, rotating keys, tamper-evident, bounded, locked."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from cryptography.fernet import Fernet

from entra_auth.client.redis_cache import RedisTokenCacheStore
from entra_auth.client.token_cache import TokenCacheCipher, user_token_cache
from entra_auth.errors import ConfigurationError, SessionStoreUnavailable

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


def test_the_lock_serialises_load_to_save(redis_url: str) -> None:
    first, second = store(redis_url, [NEW]), store(redis_url, [NEW])
    order: list[str] = []

    def hold() -> None:
        with user_token_cache(first):
            order.append("first in")
            time.sleep(0.3)
            order.append("first out")

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.05)
    with user_token_cache(second):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_redis_down_is_a_visible_error(tmp_path: object) -> None:
    from .helpers import free_port

    target = store(f"redis://127.0.0.1:{free_port()}/0", [NEW])
    started = time.monotonic()
    with pytest.raises(SessionStoreUnavailable):
        target.load()
    with pytest.raises(SessionStoreUnavailable):
        target.save("{}")
    assert time.monotonic() - started < 10
