"""Who does what when several nodes share one Redis: heartbeats, leases, and duties done once.

- A heartbeat (`sunshine:heartbeat:<holder>`) says a process is alive; it expires `ttl_s`
  after its last renewal, so a node that died (or lost its network) is known dead by every
  other node within `ttl_s`, whatever host it ran on.
- A `Lease` is a key that only its holder renews or releases (compare-and-set in Lua); another
  holder gets it only once it has expired (or from `take_over`, when the caller knows its holder is dead).
- A `Duty` is scheduled work (the hand-off watcher, the report sweeper, ...) that every node runs
  and that acts once per period across them: the first node to claim period P runs that round
  (`sunshine:duty:<name>:last` holds the last period claimed); no round starts while another
  node's round still runs (`sunshine:duty:<name>:running`, a lease the round gives back).
- `claim_once(key)`: an atomic first-comer claim (SET NX), e.g. taking back one dead
  worker's job exactly once.
"""

from __future__ import annotations

import os
import socket
import time

import redis

PREFIX = "sunshine"
# A duty round of a node that died mid-round holds the duty at most this long (or its period).
DUTY_ROUND_TTL_S = 30.0

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_CLAIM_PERIOD = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if last >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""


def node_name(configured: str = "") -> str:
    """This node's name: NODE_NAME, else the host name."""
    return configured or socket.gethostname()


def process_holder(node: str) -> str:
    """This process's name as a holder: `<node>-<pid>`."""
    return f"{node}-{os.getpid()}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def heartbeat_key(holder: str) -> str:
    return f"{PREFIX}:heartbeat:{holder}"


def beat(connection: redis.Redis, holder: str, ttl_s: float) -> None:
    """Say `holder` is alive for the next `ttl_s` seconds."""
    connection.set(heartbeat_key(holder), str(time.time()), px=_ms(ttl_s))


def alive(connection: redis.Redis, holder: str) -> bool:
    """Whether `holder`'s heartbeat has not expired."""
    return bool(connection.exists(heartbeat_key(holder)))


def forget(connection: redis.Redis, holder: str) -> None:
    """Drop `holder`'s heartbeat (it stopped, or is known dead)."""
    connection.delete(heartbeat_key(holder))


def claim_once(connection: redis.Redis, key: str, holder: str, keep_s: float = 86400) -> bool:
    """The first caller for `key` gets True, every later one False (for `keep_s`)."""
    return bool(connection.set(f"{PREFIX}:claim:{key}", holder, nx=True, px=_ms(keep_s)))


class Lease:
    """A key held by one holder at a time, for `ttl_s` after each renewal."""

    def __init__(self, connection: redis.Redis, name: str, holder: str, ttl_s: float):
        self.connection, self.key, self.holder, self.ttl_s = connection, f"{PREFIX}:lease:{name}", holder, ttl_s

    def acquire(self) -> bool:
        """Take the lease when free, or renew it when ours; False while another holds it."""
        return bool(self.connection.eval(_ACQUIRE, 1, self.key, self.holder, _ms(self.ttl_s)))

    def holder_now(self) -> str | None:
        raw = self.connection.get(self.key)
        return raw.decode() if raw is not None else None

    def take_over(self, dead_holder: str) -> bool:
        """Take the lease from `dead_holder` (known dead) at once, if it still holds it."""
        return bool(self.connection.eval(_TAKE_OVER, 1, self.key, self.holder, dead_holder, _ms(self.ttl_s)))

    def release(self) -> None:
        self.connection.eval(_RELEASE, 1, self.key, self.holder)


class Duty:
    """Scheduled work that acts once per `every_s` period across every node running it."""

    def __init__(self, connection: redis.Redis, name: str, holder: str, every_s: float):
        self.connection, self.holder, self.every_s = connection, holder, every_s
        self.last_key = f"{PREFIX}:duty:{name}:last"
        self.running_key = f"{PREFIX}:duty:{name}:running"

    def period(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) // self.every_s)

    def until_next(self, now: float | None = None) -> float:
        """Seconds to the start of the next period (every node's rounds start together)."""
        now = time.time() if now is None else now
        return (self.period(now) + 1) * self.every_s - now

    def claim(self, period: int) -> bool:
        """Whether this node runs `period`'s round: no other node claimed it and none is mid-round."""
        ttl = _ms(max(self.every_s, DUTY_ROUND_TTL_S))
        keys = (self.last_key, self.running_key)
        return bool(self.connection.eval(_CLAIM_PERIOD, 2, *keys, period, self.holder, ttl))

    def done(self) -> None:
        """The round is over: another node may start the next period's."""
        self.connection.eval(_RELEASE, 1, self.running_key, self.holder)
