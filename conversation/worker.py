"""`python -m conversation.worker PARTITION`: one background worker (RQ) that
asks the bot and delivers answers that missed WeChat's passive window, for
the customers whose openid falls in its partition (see `sunshine.jobs.queue_name`).

Restart-safe: a job whose worker died in the middle of it (killed, crashed)
stays in RQ's started-job registry, where RQ would only mark it failed. When
the worker of a partition starts, it puts such jobs of a dead worker of its
partition on this machine back at the front of its queue, marked
`abandoned` in their meta; the jobs themselves are safe to run again
(`conversation.tasks.answer_message`, `auth_flow.reports.fetch_job`). It also takes over
the scheduler lock a dead worker of its partition still holds, so that
delayed jobs (delivery retries) run at once, not after RQ's fallback period.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket

import psutil
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from sunshine.jobs import partition_queue
from sunshine.protect import configure_logging
from sunshine.redis import connect
from sunshine.settings import load

log = logging.getLogger("conversation.worker")


def worker_name(partition: int, pid: int) -> str:
    return f"replies.{partition}-{socket.gethostname()}-{pid}"


def requeue_abandoned(queue: Queue, partition: int) -> list[str]:
    """Put back the jobs that a dead worker of this partition on this machine had taken; their ids."""
    registry = StartedJobRegistry(queue=queue)
    prefix = worker_name(partition, 0)[:-1]
    requeued = []
    # Read the registry as it is: RQ's own get_job_ids() would first move expired jobs to `failed`.
    for raw_id in queue.connection.zrange(registry.key, 0, -1):
        job_id = raw_id.decode()
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:
            registry.remove(job_id)
            continue
        owner = job.worker_name or ""
        pid = owner[len(prefix) :]
        if not owner.startswith(prefix) or not pid.isdigit() or psutil.pid_exists(int(pid)):
            continue
        job.meta["abandoned"] = job.meta.get("abandoned", 0) + 1
        job.save_meta()
        registry.requeue(job, at_front=True)
        requeued.append(job_id)
    # A worker killed between taking a job off the queue and registering it as started leaves it
    # in RQ's intermediate queue (where RQ would mark it failed a minute later): put back too.
    started = {raw.decode() for raw in queue.connection.zrange(registry.key, 0, -1)}
    for raw_id in reversed(queue.connection.lrange(queue.intermediate_queue_key, 0, -1)):
        job_id = raw_id.decode()
        if job_id in started or job_id in requeued:
            continue
        queue.connection.lrem(queue.intermediate_queue_key, 1, job_id)
        queue.push_job_id(job_id, at_front=True)
        requeued.append(job_id)
    if requeued:
        log.warning("put back %d job(s) taken by a worker that died: %s", len(requeued), requeued)
    return requeued


def release_dead_scheduler_lock(queue: Queue, partition: int) -> bool:
    """RQ's scheduler (the delayed delivery retries) runs where its lock is held; a worker of this
    partition that died holds it until it expires, up to RQ's 10-minute fallback: released now."""
    key = RQScheduler.get_locking_key(queue.name)
    holder = (queue.connection.get(key) or b"").decode()
    registered = {w.name for w in SimpleWorker.all(queue=queue)}
    if not holder.isdigit() or worker_name(partition, int(holder)) not in registered or psutil.pid_exists(int(holder)):
        return False
    queue.connection.delete(key)
    log.warning("released the scheduler lock of %s held by dead worker %s", queue.name, holder)
    return True


def main(argv: list[str] | None = None) -> None:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m conversation.worker")
    parser.add_argument(
        "partition",
        type=int,
        choices=range(settings.worker_processes),
        help="which of the WORKER_PROCESSES queues this worker serves",
    )
    partition = parser.parse_args(argv).partition
    configure_logging(settings.log_level)
    connection = connect(settings.redis_url, socket_timeout=None)
    queue = Queue(partition_queue(partition), connection=connection)
    # SimpleWorker runs jobs in this process: no fork per message, imports stay warm.
    requeue_abandoned(queue, partition)
    release_dead_scheduler_lock(queue, partition)
    worker = SimpleWorker([queue], connection=connection, name=worker_name(partition, os.getpid()))
    # The scheduler runs the delayed delivery retries.
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()
