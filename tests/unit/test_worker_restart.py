"""A job whose worker died in the middle is put back when the partition's worker starts again."""
from __future__ import annotations

import subprocess
import sys

from rq import Queue
from rq.registry import StartedJobRegistry

from conversation.worker import requeue_abandoned, worker_name
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
