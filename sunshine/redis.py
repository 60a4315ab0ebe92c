"""The shared Redis connection."""

from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=8)
def connect(url: str, socket_timeout: float | None = 10.0) -> redis.Redis:
    """A client for `url`. A down Redis is noticed within 2 s; reads may block up
    to `socket_timeout` (longer than any BLPOP the caller makes; None for workers)."""
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=2, health_check_interval=30, decode_responses=False
    )
