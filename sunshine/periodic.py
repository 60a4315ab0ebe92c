"""Running one round of work once, or every few seconds until stopped (the
launcher's long-running housekeeping processes). Kept running on several
nodes, a round acts once per period across them (`sunshine.leases.Duty`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from sunshine.leases import Duty, node_name, process_holder
from sunshine.redis import connect
from sunshine.settings import Settings

log = logging.getLogger(__name__)


def shared_duty(settings: Settings, name: str, every_s: float | None) -> Duty | None:
    """The duty `name` shared by every node on this Redis (None for a single round)."""
    if every_s is None:
        return None
    return Duty(connect(settings.redis_url), name, process_holder(node_name(settings.node_name)), every_s)


def _claimed(duty: Duty, what: str) -> bool:
    try:
        return duty.claim(duty.period())
    except RedisError as exc:  # which node's turn it is cannot be known: the round waits for Redis
        log.warning("%s skipped, Redis unreachable: %s", what, exc)
        return False


def run_rounds(one_round: Callable[[bool], None], every_s: float | None, what: str, duty: Duty | None = None) -> int:
    """`one_round(once)` once (a database failure raises), or every `every_s` seconds
    (a failed round is logged and tried again); with a `duty`, at the start of each period,
    when this node claims it. Returns the exit code."""
    while True:
        claimed = duty is None or _claimed(duty, what)
        try:
            if claimed:
                one_round(every_s is None)
        except SQLAlchemyError:
            if every_s is None:
                raise
            log.exception("%s failed; trying again in %ss", what, every_s)
        finally:
            if claimed and duty is not None:
                try:
                    duty.done()
                except RedisError:  # the round's lease expires on its own
                    pass
        if every_s is None:
            return 0
        try:
            time.sleep(duty.until_next() if duty is not None else every_s)
        except KeyboardInterrupt:
            return 0
