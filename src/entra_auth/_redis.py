"""The Redis client the web adapters share (sessions, token caches, the front-channel index):
bounded waits, and redis imported only when ``REDIS_URL`` is set, so that an install without
the ``redis`` extra never needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    import redis


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
            remedy="pip install 'entra-auth[redis]' (with your framework's extra), or unset "
            "REDIS_URL to keep sessions in files.",
        ) from None
    return redis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
        health_check_interval=15,
    )


__all__ = ["redis_client"]
