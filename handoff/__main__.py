"""`python -m handoff watch [--every SECONDS]`: the hand-off watcher that `make run` keeps running.

Each round it queues for the bot the customers' messages held in the database while Redis was
down (conversation.inbox), stores WeCom notices of deadlines about to pass (HANDOFF_WARN_MINUTES) and of
overdue hand-offs (to supervisors), and enqueues every notice not yet sent; every minute it
also queues again officers' replies whose job was lost. Run on several nodes, a round acts on
one of them (`sunshine.periodic`). Exit status 2: could not run.
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
from sunshine.periodic import run_rounds, shared_duty
from sunshine.protect import configure_logging
from sunshine.settings import Settings, load_for_command

log = logging.getLogger("handoff.watch")


def watch_once(settings: Settings, jobs: Jobs, requeue_stale: bool = True) -> int:
    try:
        relay_held(settings, jobs)
    except RedisError as exc:  # still down: they wait for the next round
        log.warning("held messages wait for Redis: %s", exc)
    with unit_of_work(settings.database_url) as session:
        sweep_deadlines(session, timedelta(minutes=settings.handoff_warn_minutes))
    return dispatch(settings, jobs, requeue_stale)


def watch(settings: Settings, every_s: float | None = None) -> int:
    """One round, or a round every `every_s` seconds until stopped; exit status 2: a single round
    could not reach the database."""
    jobs = Jobs(settings)
    stale_every = max(1, int(60 / (every_s or 60)))

    def one_round(once: bool) -> None:
        # every minute (the periods are the same on every node), officers' replies whose job was lost
        period = int(time.time() / every_s) if every_s else 0
        queued = watch_once(settings, jobs, requeue_stale=once or period % stale_every == 0)
        if queued:
            log.info("queued %d notice(s) and message(s)", queued)

    try:
        return run_rounds(one_round, every_s, "hand-off watch round", shared_duty(settings, "watcher", every_s))
    except SQLAlchemyError as exc:  # a single round that could not reach the database
        log.error("hand-off watch round failed: %s", exc)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("watch",))
    parser.add_argument("--every", type=float, default=0, help="repeat every SECONDS (0: once)")
    args = parser.parse_args(argv)
    settings = load_for_command()
    configure_logging(settings.log_level)
    return watch(settings, args.every or None)


if __name__ == "__main__":
    sys.exit(main())
