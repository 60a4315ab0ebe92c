"""Rate limits kept in Redis: how often one client (an IP address, an openid, a user
name) may do something within a window. Fixed windows: the first event starts the
window, and `limit` events fill it until it ends.

When Redis is down nothing is limited (and a warning is logged): an outage must not
lock customers or officers out; the per-token attempt counts in the database still hold.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
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
# Steps posted to a dead token (expired, used, superseded, locked): each refusal is an evidence
# record, so they are limited per token (its SHA-256) and per client, lest the table be filled.
DEAD_TOKEN_STEPS = Limit("dead_token", 5, 600, "这个授权码已不能使用，请不要重复提交；需要授权请联系客户经理")
DEAD_TOKEN_STEPS_BY_CLIENT = Limit("dead_token_client", 20, 600, "操作太频繁，请稍后再试")
# Face uploads for one authorization link (each costs a face-recognition run; counted per link,
# not per address: the parties of a village share one Wi-Fi).
FACE_ATTEMPTS = Limit("face", 10, 600, "刷脸次数太多，请稍后再试")
# Wrong console passwords from one client address across user names (one user name from one
# address: `Backoff`, so that nobody elsewhere can lock an officer out).
LOGIN_FAILURES_BY_CLIENT = Limit("login_client", 20, 15 * 60, "登录失败次数太多，请15分钟后再试")
# The mini-program API (webhooks/mp.py): logins (each a jscode2session call) from one client
# address; bearer tokens that open no session from one address (a client guessing tokens is
# stopped, as TOKEN_LOOKUPS); messages one WeChat user writes to their officer.
MP_LOGINS = Limit("mp_login", 60, 600, "登录太频繁，请稍后再试")
MP_BAD_SESSIONS = Limit("mp_bad_session", 20, 600, "登录状态无效的次数太多，请稍后再打开小程序")
MP_MESSAGES = Limit("mp_message", 30, 600, "消息发得太频繁，请稍后再发")


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
        except (redis.RedisError, ValueError) as exc:
            log.warning("rate limit %s unavailable: %s", limit.name, exc)
            return 0

    def hit(self, limit: Limit, who: str) -> int:
        """Count one event and say how long to wait when it went over the limit (0: allowed)."""
        return self.retry_after(limit, who) if self.add(limit, who) > limit.limit else 0

    def clear(self, limit: Limit, who: str) -> None:
        try:
            connect(self.redis_url).delete(self._key(limit, who))
        except (redis.RedisError, ValueError) as exc:
            log.warning("rate limit %s unavailable: %s", limit.name, exc)


class Backoff:
    """Exponential back-off per client (e.g. one user name from one address): the first
    `after` failures cost nothing; from then on each try must wait `base_s` seconds,
    doubled with each further failure, at most `max_s`. A success clears it; a quiet
    period of twice `max_s` forgets it. Redis down: no waiting (logged), like `Limiter`."""

    def __init__(
        self,
        redis_url: str,
        name: str,
        after: int,
        base_s: int,
        max_s: int,
        clock: Callable[[], float] = time.time,
    ):
        self.redis_url, self.name = redis_url, name
        self.after, self.base_s, self.max_s, self.clock = after, base_s, max_s, clock

    def _key(self, who: str) -> str:
        return f"sunshine:backoff:{self.name}:{who[:256]}"

    def wait_after(self, failures: int) -> int:
        """Seconds to wait after this many failures in a row."""
        if failures < self.after:
            return 0
        return min(self.base_s * 2 ** min(failures - self.after, 30), self.max_s)

    def retry_after(self, who: str) -> int:
        """Seconds until `who` may try again; 0 when they may now."""
        try:
            failures, last = connect(self.redis_url).hmget(self._key(who), "failures", "last")
        except (redis.RedisError, ValueError) as exc:
            log.warning("back-off %s unavailable: %s", self.name, exc)
            return 0
        if failures is None or last is None:
            return 0
        left = float(last) + self.wait_after(int(failures)) - self.clock()
        return math.ceil(left) if left > 0 else 0

    def fail(self, who: str) -> int:
        """Count one failure; returns the seconds `who` must now wait (0: none)."""
        key = self._key(who)
        try:
            with connect(self.redis_url).pipeline() as pipe:
                failures, *_ = (
                    pipe.hincrby(key, "failures", 1)
                    .hset(key, "last", repr(self.clock()))
                    .expire(key, 2 * self.max_s)
                    .execute()
                )
        except (redis.RedisError, ValueError) as exc:
            log.warning("back-off %s unavailable: %s", self.name, exc)
            return 0
        return self.wait_after(int(failures))

    def clear(self, who: str) -> None:
        try:
            connect(self.redis_url).delete(self._key(who))
        except (redis.RedisError, ValueError) as exc:
            log.warning("back-off %s unavailable: %s", self.name, exc)
