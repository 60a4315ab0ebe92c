"""Two nodes on one database and one Redis, and one of them lost under load (issue 23).

One shared stack (Redis, Rasa, action server, emulators) and two nodes of web,
reply workers and duties (`run --roles`, separate process groups and ports, as two
hosts), behind a TCP balancer that sends each connection to the next node in turn (a
WeChat retry often lands on the other node). A crowd of WeChat users talks through it
with the soak's mix (questions, loan applications, 转人工), each user first as a bound
customer applying for a loan, while a credit-report query is in flight on one node; that node is SIGKILLed
whole and not restarted. Then: every message answered exactly once or kept for an
officer; each customer's messages asked of the bot once each, in order, and answered in
that order; the reports queried once at the bureau and the application decided once; no
application created twice.
"""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from bench.lending import village_row
from bench.soak import Visits, load_households
from bot.actions.common import SORRY_BUSY
from clients.rasa import RasaClient
from conversation.inbox import HELD_FOR_LATER
from conversation.tasks import BOT_UNAVAILABLE
from emulators.balancer import serve_balancer
from emulators.wechat.crowd import Crowd, Result
from lending.customers import by_id_number
from sunshine import leases, local_stack
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, queue_name
from sunshine.models import ApplicationEvent, CreditReportRecord, LoanApplication
from sunshine.redis import connect
from sunshine.settings import Settings
from tests import TEST_SECRET
from tests.conftest import STACK_SETTINGS, fresh_database
from tests.faults.test_faults import consented_application, kept_for_officer

pytestmark = pytest.mark.faults
HOUSEHOLDS = 40
USERS = 6
# A bound customer's loan application, as the demo story answers the bot's questions.
APPLICATION = ("我想贷款", "1", "借5万", "一年", "买化肥种子", "确认", "我的申请到哪一步了")
NODE_SETTINGS = dict(STACK_SETTINGS, WEB_WORKERS="1", HEARTBEAT_TTL_S="4")


@pytest.fixture
def cluster(tmp_path):
    with fresh_database(tmp_path) as db_url:
        try:
            started = local_stack.start_cluster(tmp_path, db_url, nodes=2, **NODE_SETTINGS)
        except local_stack.StackFailed as exc:
            pytest.fail(str(exc))
        try:
            yield started
        finally:
            started.stop()


def partition_holder(redis_url: str, key: str, partitions: int) -> str:
    """The node whose worker serves `key`'s partition (its lease holder is `replies.K-<node>-<pid>`)."""
    partition = queue_name(key, partitions).rsplit(".", 1)[1]
    holder = leases.Lease(connect(redis_url), f"partition:{partition}", "", 1).holder_now() or ""
    return holder.split("-", 1)[1].rsplit("-", 1)[0]


def bind_households(db_url: str, prefix: str) -> None:
    """Each user's first customer is a household of the village file, bound to that WeChat (the last
    households: the soak's application visits try to bind the first ones)."""
    with unit_of_work(db_url) as session:
        for user in range(USERS):
            customer = by_id_number(session, TEST_SECRET, village_row(HOUSEHOLDS - 1 - user)["id_number"])
            customer.wechat_openid = f"{prefix}{user}_0"


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return got


def asked_in_order(rasa: RasaClient, result: Result, kept: set[int]) -> list[str]:
    """Customers whose messages the bot was not asked once each, in the order sent (a message kept
    for an officer may not have reached it)."""
    wrong = []
    by_user: dict[str, list] = {}
    for m in result.messages:
        by_user.setdefault(m.openid, []).append(m)
    for openid, messages in by_user.items():
        asked = [turn["text"] for turn in rasa.history(openid) if turn["author"] == "customer"]
        i, in_order = 0, True
        for m in messages:
            if i < len(asked) and asked[i] == m.text:
                i += 1
            elif m.msg_id not in kept:
                in_order = False
        if not in_order or i != len(asked):  # one missing, out of order, or asked twice
            wrong.append(f"{openid}: sent {[m.text for m in messages]}, the bot was asked {asked}")
    return wrong


def test_a_node_lost_under_load_loses_and_repeats_nothing(cluster, tmp_path):
    shared, (node_a, node_b) = cluster.shared, cluster.nodes
    db_url, redis_url = shared.env["DATABASE_URL"], shared.redis_url
    load_households(db_url, TEST_SECRET, tmp_path, HOUSEHOLDS)
    prefix, visits = "o_nodes_", Visits(HOUSEHOLDS)
    bind_households(db_url, prefix)
    app_id = consented_application(shared)
    with unit_of_work(db_url) as session:
        applications_before = session.scalar(select(func.count(LoanApplication.id)))
    bureau = shared.env["BUREAU_URL"]
    requests.post(f"{bureau}/_emulator/faults", json={"mode": "slow", "delay": 6, "count": 3}, timeout=5)
    partitions = int(NODE_SETTINGS["WORKER_PROCESSES"])
    s = Settings()
    with serve_balancer([node_a.web, node_b.web]) as balancer:
        crowd = Crowd(
            balancer + "/wechat",
            shared.wechat_api,
            s.wechat_token,
            s.wechat_appid,
            users=USERS,
            conversation=lambda user, visit: APPLICATION if visit == 0 else visits(user, visit),
            prefix=prefix,
            acknowledgements=[HELD_FOR_LATER],
            kept=lambda msg_ids: kept_for_officer(shared, msg_ids),
            notice=lambda m: m["msgtype"] == "image",  # an application's authorization QR codes
        )
        crowd.start(duration_s=120)
        try:
            time.sleep(4)
            Jobs(Settings(redis_url=redis_url, worker_processes=partitions)).fetch_reports(app_id)
            wait_for(lambda: _report_statuses(db_url, app_id) == ["querying"] * 3, 30, "no query in flight")
            lost = {"node-a": node_a, "node-b": node_b}[
                partition_holder(redis_url, f"application:{app_id}", partitions)
            ]
            lost.kill_all()  # the host of the report's query is gone, mid-query
            time.sleep(10)  # the other node takes the partitions over within HEARTBEAT_TTL_S
        finally:
            result = crowd.stop(settle_s=45)
    kept = kept_for_officer(shared, [m.msg_id for m in result.messages])
    summary = result.summary()
    assert result.sent >= 4 * USERS, summary
    assert result.failed == 0, [(m.msg_id, m.error) for m in result.messages if m.kind == "failed"]
    assert result.duplicated == 0, (summary, result.extra_answers)
    assert not set(result.lost_ids) - kept, summary
    survivor = node_b if lost is node_a else node_a
    assert survivor.proc.poll() is None, survivor.log_tail()
    # each customer's messages went to the bot once each, in order (and so were answered in order:
    # one worker serves a customer's partition at a time, and the crowd matched the answers in order)
    rasa = RasaClient(shared.rasa, token=shared.env["RASA_TOKEN"])
    assert asked_in_order(rasa, result, kept) == []
    # the report query in flight on the lost node: taken back once by the other, queried once at the bureau
    statuses = wait_for(
        lambda: (st := _report_statuses(db_url, app_id)) == ["received"] * 3 and st, 30, "reports not received"
    )
    assert statuses == ["received"] * 3
    with unit_of_work(db_url) as session:
        events = session.scalars(
            select(ApplicationEvent.action)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.id)
        ).all()
        pairs = session.execute(
            select(LoanApplication.customer_id, LoanApplication.product_code, func.count(LoanApplication.id))
            .group_by(LoanApplication.customer_id, LoanApplication.product_code)
            .having(func.count(LoanApplication.id) > 1)
        ).all()
        applications = session.scalar(select(func.count(LoanApplication.id)))
    assert events.count("reports_arrived") == 1, events
    queries = requests.get(f"{bureau}/_emulator/queries", timeout=5).json()
    assert len(queries) == 3, queries  # asked again by the new worker under the same key: one query each
    assert pairs == []  # no application created twice
    assert applications > applications_before, "the crowd applied for no loan"
    answers = [m.answer for m in result.messages]
    assert SORRY_BUSY not in answers and BOT_UNAVAILABLE not in answers


def _report_statuses(url: str, app_id: int) -> list[str]:
    with unit_of_work(url) as session:
        return list(
            session.scalars(
                select(CreditReportRecord.status)
                .where(CreditReportRecord.application_id == app_id)
                .order_by(CreditReportRecord.id)
            ).all()
        )
