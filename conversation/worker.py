"""`python -m conversation.worker`: the background worker (RQ) that asks the
bot and delivers answers that missed WeChat's passive window."""
from __future__ import annotations

import os
import socket

from rq import Queue
from rq.worker import SimpleWorker

from conversation.tasks import QUEUE
from sunshine.protect import configure_logging
from sunshine.redis import connect
from sunshine.settings import load


def main() -> None:
    settings = load()
    configure_logging(settings.log_level)
    connection = connect(settings.redis_url, socket_timeout=None)
    # SimpleWorker runs jobs in this process: no fork per message, imports stay warm.
    worker = SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection,
                          name=f"replies-{socket.gethostname()}-{os.getpid()}")
    worker.work(with_scheduler=False)


if __name__ == "__main__":
    main()
