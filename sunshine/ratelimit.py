"""Rate limits kept in Redis: how often one client (an IP address, an openid, a user
name) may do something within a window. Fixed windows: the first event starts the
window, and `limit` events fill it until it ends.

When Redis is down nothing is limited (and a warning is logged): an outage must not
lock customers or officers out; the per-token attempt counts in the database still hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from sunshine.redis import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """`limit` events per `window_s` seconds for one client; `message` (Chinese) is what they read."""

    name: str
    limit: int
    window_s: int
    message: str


# Unknown authorization tokens one client may try (a guessing client is stopped).
TOKEN_LOOKUPS = Limit("token_miss", 20, 600, "尝试次数太多，请稍后再打开授权链接")
# Face uploads from one client (each costs a face-recognition run).
FACE_ATTEMPTS = Limit("face", 10, 600, "刷脸次数太多，请稍后再试")
# Wrong console passwords for one user name, and from one client address across user names.
LOGIN_FAILURES = Limit("login_user", 5, 15 * 60, "密码错误次数太多，请15分钟后再试")
LOGIN_FAILURES_BY_CLIENT = Limit("login_client", 20, 15 * 60, "登录失败次数太多，请15分钟后再试")


class Limiter:
    def __init__(self, redis_url: str):
        self.redis_url = redis_url

    def _key(self, limit: Limit, who: str) -> str:
        return f"sunshine:ratelimit:{limit.name}:{who[:128]}"

    def retry_after(self, limit: Limit, who: str) -> int:
        """Seconds until `who` may try again; 0 when they may now."""
        try:
            r = connect(self.redis_url)
            key = self._key(limit, who)
            if int(r.get(key) or 0) < limit.limit:
                return 0
            return max(int(r.ttl(key)), 1)
        except (redis.RedisError, ValueError) as exc:
            log.warning("rate limit %s unavailable: %s", limit.name, exc)
            return 0

    def add(self, limit: Limit, who: str) -> int:
        """Count one event; returns the count in the current window (0 when Redis is down)."""
        try:
            r = connect(self.redis_url)
            key = self._key(limit, who)
            with r.pipeline() as pipe:
                _, count = pipe.set(key, 0, ex=limit.window_s, nx=True).incr(key).execute()
            return int(count)
        except redis.RedisError as exc:
            log.warning("rate limit %s unavailable: %s", limit.name, exc)
            return 0

    def hit(self, limit: Limit, who: str) -> int:
        """Count one event and say how long to wait when it went over the limit (0: allowed)."""
        return self.retry_after(limit, who) if self.add(limit, who) > limit.limit else 0

    def clear(self, limit: Limit, who: str) -> None:
        try:
            connect(self.redis_url).delete(self._key(limit, who))
        except redis.RedisError as exc:
            log.warning("rate limit %s unavailable: %s", limit.name, exc)
