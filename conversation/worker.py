"""`python -m conversation.worker PARTITION`: one background worker (RQ) that
asks the bot and delivers answers that missed WeChat's passive window, for
the customers whose openid falls in its partition (see `tasks.queue_name`)."""
from __future__ import annotations

import argparse
import os
import socket

from rq import Queue
from rq.worker import SimpleWorker

from conversation.tasks import partition_queue
from sunshine.protect import configure_logging
from sunshine.redis import connect
from sunshine.settings import load


def main(argv: list[str] | None = None) -> None:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m conversation.worker")
    parser.add_argument("partition", type=int, choices=range(settings.worker_processes),
                        help="which of the WORKER_PROCESSES queues this worker serves")
    partition = parser.parse_args(argv).partition
    configure_logging(settings.log_level)
    connection = connect(settings.redis_url, socket_timeout=None)
    queue = Queue(partition_queue(partition), connection=connection)
    # SimpleWorker runs jobs in this process: no fork per message, imports stay warm.
    worker = SimpleWorker([queue], connection=connection,
                          name=f"replies.{partition}-{socket.gethostname()}-{os.getpid()}")
    # The scheduler runs the delayed delivery retries.
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()
