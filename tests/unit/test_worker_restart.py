"""A job whose worker died in the middle is put back when the partition's worker starts again."""

from __future__ import annotations

import os
import subprocess
import sys

from rq import Queue
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from conversation.worker import release_dead_scheduler_lock, requeue_abandoned, worker_name
from sunshine.redis import connect


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def started_by(queue: Queue, name: str, *args):
    job = queue.enqueue("builtins.print", *args)
    queue.remove(job)  # taken off the queue by the worker
    job.worker_name = name
    job.save()
    StartedJobRegistry(queue=queue).add(job, 120)
    return job


def test_jobs_of_a_dead_worker_go_back_to_the_front_of_the_queue(redis_url):
    queue = Queue("replies.0", connection=connect(redis_url))
    waiting = queue.enqueue("builtins.print", "later")
    dead = started_by(queue, worker_name(0, dead_pid()), "first")
    alive = started_by(queue, worker_name(0, 1), "running elsewhere")  # pid 1 is alive
    other = started_by(queue, worker_name(1, dead_pid()), "another partition's")
    assert requeue_abandoned(queue, 0) == [dead.id]
    assert queue.job_ids == [dead.id, waiting.id]
    dead.refresh()
    assert dead.meta["abandoned"] == 1
    assert set(StartedJobRegistry(queue=queue).get_job_ids()) == {alive.id, other.id}
    assert requeue_abandoned(queue, 0) == []  # once


def test_the_scheduler_lock_of_a_dead_worker_of_the_partition_is_released(redis_url):
    connection = connect(redis_url)
    queue = Queue("replies.0", connection=connection)
    key = RQScheduler.get_locking_key(queue.name)
    dead, alive = dead_pid(), os.getpid()
    for pid in (dead, alive):
        SimpleWorker([queue], connection=connection, name=worker_name(0, pid)).register_birth()
    connection.set(key, alive)
    assert not release_dead_scheduler_lock(queue, 0) and connection.get(key) == str(alive).encode()
    connection.set(key, 4_000_000)  # not a worker of this partition here (another machine's): kept
    assert not release_dead_scheduler_lock(queue, 0) and connection.exists(key)
    connection.set(key, dead)
    assert release_dead_scheduler_lock(queue, 0) and not connection.exists(key)


def test_a_job_taken_off_the_queue_but_not_yet_started_goes_back_too(redis_url):
    """RQ moves a job to its intermediate queue, then registers it as started: a worker killed
    in between leaves it there."""
    connection = connect(redis_url)
    queue = Queue("replies.0", connection=connection)
    first, second = queue.enqueue("builtins.print", "a"), queue.enqueue("builtins.print", "b")
    connection.lmove(queue.key, queue.intermediate_queue_key)  # the killed worker's dequeue
    assert queue.job_ids == [second.id]
    assert requeue_abandoned(queue, 0) == [first.id]
    assert queue.job_ids == [first.id, second.id] and connection.llen(queue.intermediate_queue_key) == 0
