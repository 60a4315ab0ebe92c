"""A partition is served by one worker at a time, on any node; a job whose worker died in the
middle is put back, once, by the worker that takes the partition over."""

from __future__ import annotations

import subprocess
import sys
import time

from rq import Queue
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler

from conversation.worker import release_scheduler_lock, requeue_abandoned, take_partition, worker_name
from sunshine import leases
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


def test_jobs_of_a_worker_whose_heartbeat_expired_go_back_to_the_front_once(redis_url):
    connection = connect(redis_url)
    queue = Queue("replies.0", connection=connection)
    waiting = queue.enqueue("builtins.print", "later")
    dead = started_by(queue, worker_name(0, "node-a", 4242), "first")  # node-a's heartbeat expired
    alive_name = worker_name(0, "node-c", 4343)
    leases.beat(connection, alive_name, 10)
    alive = started_by(queue, alive_name, "running elsewhere")
    me, other = worker_name(0, "node-b", 1), worker_name(0, "node-d", 1)
    assert requeue_abandoned(queue, me) == [dead.id]
    assert queue.job_ids == [dead.id, waiting.id]
    dead.refresh()
    assert dead.meta["abandoned"] == 1
    assert set(StartedJobRegistry(queue=queue).get_job_ids()) == {alive.id}
    # The same job started again by node-a and left again: a worker of another node racing this one
    # for it finds it claimed.
    queue.remove(dead)
    StartedJobRegistry(queue=queue).add(dead, 120)
    assert requeue_abandoned(queue, other) == []
    assert requeue_abandoned(queue, me) == []


def test_the_scheduler_lock_left_by_the_partitions_previous_worker_is_released(redis_url):
    connection = connect(redis_url)
    queue = Queue("replies.0", connection=connection)
    key = RQScheduler.get_locking_key(queue.name)
    assert not release_scheduler_lock(queue)
    connection.set(key, 4_000_000)
    assert release_scheduler_lock(queue) and not connection.exists(key)


def test_a_job_taken_off_the_queue_but_not_yet_started_goes_back_too(redis_url):
    """RQ moves a job to its intermediate queue, then registers it as started: a worker killed
    in between leaves it there."""
    connection = connect(redis_url)
    queue = Queue("replies.0", connection=connection)
    first, second = queue.enqueue("builtins.print", "a"), queue.enqueue("builtins.print", "b")
    connection.lmove(queue.key, queue.intermediate_queue_key)  # the killed worker's dequeue
    assert queue.job_ids == [second.id]
    assert requeue_abandoned(queue, worker_name(0, "node-b", 1)) == [first.id]
    assert queue.job_ids == [first.id, second.id] and connection.llen(queue.intermediate_queue_key) == 0


def lease_of(connection, name: str, ttl_s: float = 10) -> leases.Lease:
    return leases.Lease(connection, "partition:0", name, ttl_s)


def test_one_worker_holds_a_partition_until_its_heartbeat_expires(redis_url):
    connection = connect(redis_url)
    a, b = worker_name(0, "node-a", 11), worker_name(0, "node-b", 12)
    assert take_partition(lease_of(connection, a, 0.3), 0, "node-a")
    assert take_partition(lease_of(connection, a, 0.3), 0, "node-a")  # renewed by its holder
    assert not take_partition(lease_of(connection, b), 0, "node-b")  # another node's: waits
    time.sleep(0.4)  # node-a stopped renewing
    assert take_partition(lease_of(connection, b), 0, "node-b")
    assert lease_of(connection, b).holder_now() == b
    assert not lease_of(connection, a).acquire()  # node-a, back from a stall, finds it taken


def test_a_worker_restarted_on_the_same_node_takes_over_from_its_dead_predecessor_at_once(redis_url):
    connection = connect(redis_url)
    dead = worker_name(0, "node-a", dead_pid())
    leases.beat(connection, dead, 60)
    assert take_partition(lease_of(connection, dead, 60), 0, "node-a")
    again = worker_name(0, "node-a", 99)
    assert not take_partition(lease_of(connection, again), 0, "node-b")  # not another node's to judge
    assert take_partition(lease_of(connection, again), 0, "node-a")
    assert not leases.alive(connection, dead)


def test_a_duty_acts_once_per_period_across_nodes_and_never_beside_a_running_round(redis_url):
    connection = connect(redis_url)
    a = leases.Duty(connection, "watcher", "node-a-1", 2)
    b = leases.Duty(connection, "watcher", "node-b-1", 2)
    assert a.claim(100) and not b.claim(100)
    assert not b.claim(101)  # node-a's round of period 100 still runs
    a.done()
    assert not a.claim(100) and b.claim(101) and not a.claim(101)
    b.done()
    assert a.claim(103)
    assert 0 < a.until_next(10.5) == 1.5
