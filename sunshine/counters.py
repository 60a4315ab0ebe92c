"""Fixed-window event counts in the database, each counted in one atomic statement.

    n = bump(session, "bind_guess:<openid>", 86400)   # this event's number in its window

`INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 ... RETURNING count` (PostgreSQL, and
SQLite 3.35+): parallel events under one key each get their own number (the row is locked by
the update until the transaction ends), so a limit checked on that number is never passed.
The first event starts the window; the first one after it ends starts a new one. Unlike the
Redis limits (sunshine.ratelimit), these hold when Redis is down: they guard against guessing.
"""

from __future__ import annotations

from datetime import timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from sunshine.clock import utcnow

_BUMP = text(
    "INSERT INTO event_counters (key, window_ends, count) VALUES (:key, :ends, 1) "
    "ON CONFLICT (key) DO UPDATE SET "
    "count = CASE WHEN event_counters.window_ends <= :now THEN 1 ELSE event_counters.count + 1 END, "
    "window_ends = CASE WHEN event_counters.window_ends <= :now THEN :ends ELSE event_counters.window_ends END "
    "RETURNING count"
)


def _now_s() -> int:
    return int(utcnow().replace(tzinfo=timezone.utc).timestamp())  # utcnow is naive UTC


def bump(session: Session, key: str, window_s: int) -> int:
    """Count one event under `key` (at most 128 characters); returns its number in the current window."""
    now = _now_s()
    return int(session.execute(_BUMP, {"key": key[:128], "now": now, "ends": now + window_s}).scalar_one())
