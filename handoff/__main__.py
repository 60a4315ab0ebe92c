"""`python -m handoff watch [--every SECONDS]`: the hand-off watcher that `make run` keeps running.

Each round it queues for the bot the customers' messages held in the database while Redis was
down (conversation.inbox), stores WeCom notices of deadlines about to pass (HANDOFF_WARN_MINUTES) and of
overdue hand-offs (to supervisors), and enqueues every notice not yet sent; every minute it
also queues again officers' replies whose job was lost. Exit status 2: could not run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from conversation.inbox import relay_held
from handoff.jobs import dispatch
from handoff.service import sweep_deadlines
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.protect import configure_logging
from sunshine.settings import ConfigError, Settings, load

log = logging.getLogger("handoff.watch")


def watch_once(settings: Settings, jobs: Jobs, requeue_stale: bool = True) -> int:
    try:
        relay_held(settings, jobs)
    except RedisError as exc:  # still down: they wait for the next round
        log.warning("held messages wait for Redis: %s", exc)
    with unit_of_work(settings.database_url) as session:
        sweep_deadlines(session, timedelta(minutes=settings.handoff_warn_minutes))
    return dispatch(settings, jobs, requeue_stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("watch",))
    parser.add_argument("--every", type=float, default=0, help="repeat every SECONDS (0: once)")
    args = parser.parse_args(argv)
    try:
        settings = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    jobs = Jobs(settings)
    rounds = 0
    while True:
        try:
            queued = watch_once(settings, jobs, requeue_stale=rounds % max(1, int(60 / (args.every or 60))) == 0)
            if queued:
                log.info("queued %d notice(s) and message(s)", queued)
        except SQLAlchemyError as exc:  # the database is back in a moment: the next round catches up
            log.error("hand-off watch round failed: %s", exc)
            if not args.every:
                return 2
        if not args.every:
            return 0
        rounds += 1
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
