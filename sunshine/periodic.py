"""Running one round of work once, or every few seconds until stopped (the
launcher's long-running housekeeping processes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def run_rounds(one_round: Callable[[bool], None], every_s: float | None, what: str) -> int:
    """`one_round(once)` once (a database failure raises), or every `every_s` seconds
    (a failed round is logged and tried again); returns the exit code."""
    while True:
        try:
            one_round(every_s is None)
        except SQLAlchemyError:
            if every_s is None:
                raise
            log.exception("%s failed; trying again in %ss", what, every_s)
        if every_s is None:
            return 0
        try:
            time.sleep(every_s)
        except KeyboardInterrupt:
            return 0
