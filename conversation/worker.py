"""`python -m conversation.worker PARTITION`: one background worker (RQ) that
asks the bot and delivers answers that missed WeChat's passive window, for
the customers whose openid falls in its partition (see `sunshine.jobs.queue_name`).

Every node may run a worker for every partition; one serves it at a time (each
customer's order): the holder of the partition's lease in Redis
(`sunshine.leases`), renewed with the worker's heartbeat every third of
HEARTBEAT_TTL_S. The others wait; when the holder's heartbeat expires (its
node died), one of them takes the lease over. A worker that finds its lease
taken (it stalled past the TTL) exits at once rather than serve the partition
beside another.

Restart-safe across nodes: a job whose worker died in the middle of it stays in
RQ's started-job registry, where RQ would only mark it failed. The worker that
takes a partition over puts the jobs of workers whose heartbeat expired back at
the front of its queue, each exactly once (an atomic claim in Redis), marked
`abandoned` in their meta; the jobs themselves are safe to run again
(`conversation.tasks.answer_message`, `auth_flow.reports.fetch_job`). It also
clears the scheduler lock its predecessor left, so that delayed jobs (delivery
retries) run at once, not after RQ's fallback period. A worker restarted on the
same node does not wait for the TTL: a holder of its own node whose process is
gone is dead at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time

import psutil
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from sunshine import leases
from sunshine.jobs import partition_queue
from sunshine.protect import configure_logging
from sunshine.redis import connect
from sunshine.settings import load

log = logging.getLogger("conversation.worker")
LEASE_LOST_EXIT = 3


def worker_name(partition: int, node: str, pid: int) -> str:
    return f"replies.{partition}-{node}-{pid}"


def _dead_on_this_node(holder: str, partition: int, node: str) -> bool:
    """Whether `holder` is a worker of this node whose process is gone."""
    prefix = worker_name(partition, node, 0)[:-1]
    pid = holder[len(prefix) :]
    return holder.startswith(prefix) and pid.isdigit() and not psutil.pid_exists(int(pid))


def take_partition(lease: leases.Lease, partition: int, node: str) -> bool:
    """Take the partition's lease: free, expired, or held by a dead worker of this node."""
    if lease.acquire():
        return True
    holder = lease.holder_now()
    if holder and _dead_on_this_node(holder, partition, node) and lease.take_over(holder):
        leases.forget(lease.connection, holder)
        log.warning("took partition %d over from %s, dead on this node", partition, holder)
        return True
    return False


def requeue_abandoned(queue: Queue, me: str) -> list[str]:
    """Put back the jobs that workers of this partition whose heartbeat expired had taken; their ids."""
    registry = StartedJobRegistry(queue=queue)
    connection = queue.connection
    requeued = []
    # Read the registry as it is: RQ's own get_job_ids() would first move expired jobs to `failed`.
    for raw_id in connection.zrange(registry.key, 0, -1):
        job_id = raw_id.decode()
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            registry.remove(job_id)
            continue
        owner = job.worker_name or ""
        if not owner or owner == me or leases.alive(connection, owner):
            continue
        if not leases.claim_once(connection, f"requeue:{job_id}:{owner}", me):
            continue  # another worker took it back already
        job.meta["abandoned"] = job.meta.get("abandoned", 0) + 1
        job.save_meta()
        registry.requeue(job, at_front=True)
        requeued.append(job_id)
    # A worker killed between taking a job off the queue and registering it as started leaves it
    # in RQ's intermediate queue (where RQ would mark it failed a minute later): put back too.
    # Only the partition's previous holder takes jobs off its queue, so these are a dead one's.
    started = {raw.decode() for raw in connection.zrange(registry.key, 0, -1)}
    for raw_id in reversed(connection.lrange(queue.intermediate_queue_key, 0, -1)):
        job_id = raw_id.decode()
        if job_id in started or job_id in requeued:
            continue
        connection.lrem(queue.intermediate_queue_key, 1, job_id)
        queue.push_job_id(job_id, at_front=True)
        requeued.append(job_id)
    if requeued:
        log.warning("put back %d job(s) taken by a worker that died: %s", len(requeued), requeued)
    return requeued


def release_scheduler_lock(queue: Queue) -> bool:
    """RQ's scheduler (the delayed delivery retries) runs where its lock is held; the partition's
    previous holder, dead, holds it until it expires, up to RQ's 10-minute fallback: released now
    (only the partition's lease holder runs a scheduler for its queue)."""
    key = RQScheduler.get_locking_key(queue.name)
    if not queue.connection.delete(key):
        return False
    log.warning("released the scheduler lock of %s left by the partition's previous worker", queue.name)
    return True


def keep_alive(lease: leases.Lease, interval_s: float, stop: threading.Event) -> None:
    """Beat and renew the lease every `interval_s`; exit the process the moment the lease is another's."""
    while not stop.wait(interval_s):
        try:
            leases.beat(lease.connection, lease.holder, lease.ttl_s)
            if not lease.acquire():
                log.error("lost partition lease %s to %s: stopping", lease.key, lease.holder_now())
                os._exit(LEASE_LOST_EXIT)
        except RedisError as exc:  # nobody can take the lease while Redis is down either
            log.warning("heartbeat failed: %s", exc)


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
    node = leases.node_name(settings.node_name)
    name = worker_name(partition, node, os.getpid())
    ttl, interval = settings.heartbeat_ttl_s, settings.heartbeat_ttl_s / 3
    lease = leases.Lease(connection, f"partition:{partition}", name, ttl)
    waited = False
    while True:  # a standby until the partition is free or its holder dead
        leases.beat(connection, name, ttl)
        if take_partition(lease, partition, node):
            break
        if not waited:
            log.info("partition %d is served by %s: standing by", partition, lease.holder_now())
            waited = True
        time.sleep(interval)
    log.info("serving partition %d as %s", partition, name)
    requeue_abandoned(queue, name)
    release_scheduler_lock(queue)
    stop = threading.Event()
    threading.Thread(target=keep_alive, args=(lease, interval, stop), daemon=True).start()
    # SimpleWorker runs jobs in this process: no fork per message, imports stay warm.
    worker = SimpleWorker([queue], connection=connection, name=name)
    try:
        # The scheduler runs the delayed delivery retries.
        worker.work(with_scheduler=True)
    finally:  # a clean stop hands the partition on at once
        stop.set()
        lease.release()
        leases.forget(connection, name)


if __name__ == "__main__":
    main()
