"""The shared Redis connection."""
from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=8)
def connect(url: str) -> redis.Redis:
    """A client for `url` with short timeouts: a stalled Redis must not stall a webhook."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30,
                                decode_responses=False)
