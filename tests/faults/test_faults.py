"""Faults of the whole stack under a crowd of WeChat users (issue 8).

They run on the session's shared stack (`stack` in tests/conftest.py, the launcher
of `make run`, with the settings they need), after every test that only uses it.
For each fault a crowd of simulated WeChat users (emulators/wechat/crowd.py)
sends messages before, during and after it; one process is SIGKILLed and the
launcher's supervisor restarts it, or an emulator is told to be slow or to fail.
Then the counts: every message got exactly one answer (the bot's, or a clear
"please wait" / hand-off message), or was kept for an officer in an open hand-off;
nothing was answered twice; WeChat never gave up on the webhook.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import func, select

from conversation.inbox import HELD_FOR_LATER
from conversation.tasks import BOT_UNAVAILABLE
from emulators.wechat.crowd import Crowd, Result
from emulators.wechat.user import WeChatUser
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, queue_name
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    ApplicationEvent,
    ConversationMessage,
    CreditReportRecord,
    HandOff,
    LoanApplication,
    OfficerNotice,
)
from sunshine.settings import ROOT, Settings
from tests import TEST_SECRET

pytestmark = pytest.mark.faults
SETTINGS = Settings()
USERS = 4


def crowd_during(stack, inject, before_s: float = 2.0, after_s: float = 4.0, settle_s: float = 30) -> Result:
    """A crowd sends before `inject()`, while it runs and `after_s` after it; reconciled."""
    crowd = Crowd(
        stack.web + "/wechat",
        stack.wechat_api,
        SETTINGS.wechat_token,
        SETTINGS.wechat_appid,
        users=USERS,
        acknowledgements=[HELD_FOR_LATER],
        kept=lambda msg_ids: kept_for_officer(stack, msg_ids),
    )
    crowd.start(duration_s=300)
    try:
        time.sleep(before_s)
        inject()
        time.sleep(after_s)
    finally:
        result = crowd.stop(settle_s)
    return result


def kept_for_officer(stack, msg_ids: list[int]) -> set[int]:
    """Which of these messages are kept in an open hand-off for the officer to answer."""
    with unit_of_work(stack.env["DATABASE_URL"]) as session:
        keys = session.scalars(
            select(ConversationMessage.wechat_msg_key)
            .where(
                ConversationMessage.wechat_msg_key.in_([str(i) for i in msg_ids]),
                ConversationMessage.hand_off_id.is_not(None),
            )
            .order_by(ConversationMessage.id)
        ).all()
    return {int(k) for k in keys}


def assert_answered_once(stack, result: Result) -> None:
    assert result.sent >= 2 * USERS, result.summary()
    assert result.failed == 0, [(m.msg_id, m.error) for m in result.messages if m.kind == "failed"]
    assert result.duplicated == 0, (result.summary(), result.extra_answers)
    unanswered = set(result.lost_ids) - kept_for_officer(stack, result.lost_ids)
    assert not unanswered, result.summary()


def restarts(stack, service: str) -> int:
    text = requests.get(stack.web + "/metrics", timeout=5).text
    found = re.search(rf'sunshine_service_restarts_total\{{service="{re.escape(service)}"\}} (\d+)', text)
    return int(found.group(1)) if found else 0


def kill_and_wait(stack, service: str, child: bool = False, timeout: float = 120) -> int:
    """SIGKILL the service (or one of its children) and wait until it runs again; the new pid."""
    old = stack.kill(service, child=child)
    if child:  # gunicorn's master starts a new worker itself
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = [p.pid for p in stack.processes(service)[1:]]
            if len(children) >= 2 and old not in children:
                return max(children)
            time.sleep(0.2)
        raise AssertionError(f"no new {service} child after {timeout} s")
    return stack.wait_restarted(service, old, timeout)


def wait_ready(stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(stack.web + "/readyz", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready again within {timeout} s:\n{stack.log_tail()}")


def test_a_killed_web_worker(stack):
    result = crowd_during(stack, lambda: kill_and_wait(stack, "web", child=True))
    assert_answered_once(stack, result)


def test_a_killed_reply_worker_finishes_its_jobs_after_restart(stack):
    before = restarts(stack, "worker.0") + restarts(stack, "worker.1")
    result = crowd_during(stack, lambda: (kill_and_wait(stack, "worker.0"), kill_and_wait(stack, "worker.1")))
    assert_answered_once(stack, result)
    assert restarts(stack, "worker.0") + restarts(stack, "worker.1") == before + 2


class SmsTexts:
    """The texts the stack's SMS emulator received, read as the auth-flow test helpers read a list."""

    def __init__(self, base: str):
        self.base = base

    def __getitem__(self, index):
        return requests.get(f"{self.base}/_emulator/messages", timeout=5).json()[index]


def consented_application(
    stack, product: str = "guaranteed_farm_loan", key: str = "faults-1", applicant: str = "o_demo_zhangjianguo"
) -> int:
    """The applicant's loan (by default 张建国's guaranteed farm loan, guaranteed by 王春华) with every
    party's consent given, as the unit tests of auth_flow do it. The shared stack's other tests apply
    too (张建国 for 阳光e贷): a fault test applies for what no other test applies for."""
    from datetime import timedelta

    from auth_flow import enrolment, tokens
    from clients.sms import SmsClient
    from lending.customers import by_openid
    from tests.unit import auth_media as media
    from tests.unit.lending_helpers import service as lending_service
    from tests.unit.test_auth_flow import authorize

    url = stack.env["DATABASE_URL"]
    svc, _ = lending_service()
    with unit_of_work(url) as s:
        head, guarantor = by_openid(s, applicant), by_openid(s, "o_demo_wangchunhua")
        app = svc.apply(
            s,
            head.id,
            product,
            100_000 if product == "guaranteed_farm_loan" else 30_000,
            24,
            idempotency_key=key,
            guarantor_id=guarantor.id if product == "guaranteed_farm_loan" else None,
        )
        issued = tokens.reissue_for_application(s, app, "officer01", timedelta(minutes=30)).issued
        for i in issued:
            enrolment.enroll_reference(
                s, TEST_SECRET, s.get(type(head), i.authorization.party_customer_id), media.reference(), "officer01"
            )
        parties = [(i.token, i.authorization.party_name) for i in issued]
        app_id = app.id
    sms = (SmsClient(stack.env["SMS_API_BASE"], Settings().sms_api_key), SmsTexts(stack.env["SMS_API_BASE"]))
    for token, name in parties:
        authorize(url, token, name, sms, _redis_url(stack))
    return app_id


def test_a_worker_killed_during_a_bureau_query_finishes_it_after_restart_once(stack):
    """The reports' job is in the middle of a slow bureau query when its worker dies: the restarted
    worker takes the job back, queries again under the same key, and the application is decided once."""
    app_id = consented_application(stack)
    bureau = stack.env["BUREAU_URL"]
    earlier = len(requests.get(f"{bureau}/_emulator/queries", timeout=5).json())  # the shared stack's other tests
    requests.post(f"{bureau}/_emulator/faults", json={"mode": "slow", "delay": 6, "count": 3}, timeout=5)
    stack_jobs(stack).fetch_reports(app_id)
    url = stack.env["DATABASE_URL"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the job has claimed the queries and waits for the bureau
        with unit_of_work(url) as session:
            querying = session.scalars(
                select(CreditReportRecord.status)
                .where(CreditReportRecord.application_id == app_id)
                .order_by(CreditReportRecord.id)
            ).all()
        if querying.count("querying") == 3:
            break
        time.sleep(0.2)
    assert querying == ["querying"] * 3
    workers = int(stack.env["WORKER_PROCESSES"])
    kill_and_wait(stack, "worker." + queue_name(f"application:{app_id}", workers).rsplit(".", 1)[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with unit_of_work(url) as session:
            status = session.get(LoanApplication, app_id).status
        if status != "awaiting_authorization":
            break
        time.sleep(0.5)
    with unit_of_work(url) as session:
        assert session.get(LoanApplication, app_id).status != "awaiting_authorization"
        assert (
            session.scalars(
                select(CreditReportRecord.status)
                .where(CreditReportRecord.application_id == app_id)
                .order_by(CreditReportRecord.id)
            ).all()
            == ["received"] * 3
        )
        events = session.scalars(
            select(ApplicationEvent.action)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.id)
        ).all()
    assert events.count("reports_arrived") == 1, events
    queries = requests.get(f"{bureau}/_emulator/queries", timeout=5).json()[earlier:]
    assert len(queries) == 3  # the second asking of each report was not a second query at the bureau


def test_a_failing_bureau_leaves_the_application_waiting_and_the_officer_told_until_a_retry(stack):
    """Every query answered 503 through all its attempts: the application waits, the officer hears it
    in WeCom and in the application's history; once the bureau is back, `retry-reports` decides it once."""
    app_id = consented_application(stack, "sunshine_e_loan", "faults-2", applicant="o_demo_wangchunhua")
    bureau, url = stack.env["BUREAU_URL"], stack.env["DATABASE_URL"]
    requests.post(f"{bureau}/_emulator/faults", json={"mode": "fail", "status": 503, "count": 1000}, timeout=5)
    try:
        stack_jobs(stack).fetch_reports(app_id)
        statuses = _report_statuses(url, app_id, until=lambda st: st and set(st) == {"failed"}, timeout=60)
    finally:
        requests.delete(f"{bureau}/_emulator/faults", timeout=5)
    assert statuses and set(statuses) == {"failed"}, statuses
    with unit_of_work(url) as session:
        assert session.get(LoanApplication, app_id).status == "awaiting_authorization"
        events = session.scalars(
            select(ApplicationEvent.action)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.id)
        ).all()
        auth_ids = {
            str(a)
            for a in session.scalars(
                select(CreditReportRecord.authorization_id)
                .where(CreditReportRecord.application_id == app_id)
                .order_by(CreditReportRecord.id)
            )
        }
    assert events.count("credit_reports_failed") == 1, events
    deadline = time.monotonic() + 30
    while not any(
        f"申请{app_id}：征信报告查询失败" in json.dumps(m, ensure_ascii=False)
        for m in requests.get(f"{stack.env['WECOM_API_BASE']}/_emulator/messages", timeout=5).json()
    ):
        assert time.monotonic() < deadline, "the officer was not told in WeCom"
        time.sleep(0.5)
    retry = subprocess.run(
        [sys.executable, "-m", "auth_flow", "retry-reports", str(app_id)],  # noqa: S603
        env=dict(stack.env, REDIS_URL=_redis_url(stack)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retry.returncode == 0, retry.stderr[-2000:]
    with unit_of_work(url) as session:
        assert session.get(LoanApplication, app_id).status != "awaiting_authorization"
        events = session.scalars(
            select(ApplicationEvent.action)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.id)
        ).all()
    assert _report_statuses(url, app_id) == ["received"] * len(auth_ids)
    assert events.count("reports_arrived") == 1, events
    queries = [
        q for q in requests.get(f"{bureau}/_emulator/queries", timeout=5).json() if q["authorization_id"] in auth_ids
    ]
    assert len(queries) == len(auth_ids)  # the refused attempts made no report at the bureau


def signed_application(stack, openid: str = "o_demo_qianyumei", amount: int = 60_000) -> int:
    """A civil servant's 公e贷 approved on a clean report and signed (as the contract's signing leaves it)."""
    from lending.customers import by_openid
    from tests.unit.lending_helpers import report, service, sign

    svc, _ = service()
    with unit_of_work(stack.env["DATABASE_URL"]) as s:
        customer = by_openid(s, openid)
        # The shared stack's earlier tests may have left her 公e贷 application live (one per product).
        for live in s.scalars(
            select(LoanApplication)
            .where(
                LoanApplication.customer_id == customer.id,
                LoanApplication.product_code == "civil_servant_e_loan",
                LoanApplication.status.not_in(FINAL_APPLICATION_STATUSES),
            )
            .order_by(LoanApplication.id)
        ):
            svc.withdraw(s, live.id, actor="test")
        app = svc.apply(s, customer.id, "civil_servant_e_loan", amount, 12, idempotency_key=f"faults-{openid}")
        svc.report_arrived(s, app.id, {"applicant": report("321283198604251024", customer.name)})
        sign(s, svc, app.id)
        return app.id


def test_a_worker_killed_mid_disbursement_pays_once_after_restart(stack):
    """The disbursement job waits for a slow core (which has booked and paid) when its worker dies: the
    restarted worker runs the job again under the same Idempotency-Keys, and the money is paid once."""
    app_id = signed_application(stack)
    core, url = stack.env["CORE_BANKING_URL"], stack.env["DATABASE_URL"]
    # What the shared stack's other tests (the demo story) paid and asked before this one.
    paid_before = len(requests.get(f"{core}/_emulator/disbursements", timeout=5).json())
    asked_before = len(requests.get(f"{core}/_emulator/requests", timeout=5).json())
    fault = {"mode": "slow", "delay": 8, "count": 1, "path": "disbursements"}
    requests.post(f"{core}/_emulator/faults", json=fault, timeout=5)
    Jobs(Settings(redis_url=_redis_url(stack), worker_processes=2)).disburse(app_id)
    deadline = time.monotonic() + 30
    while len(requests.get(f"{core}/_emulator/disbursements", timeout=5).json()) == paid_before:  # paid; answer due
        assert time.monotonic() < deadline, "the core got no disbursement"
        time.sleep(0.1)
    kill_and_wait(stack, "worker." + queue_name(f"application:{app_id}", 2).rsplit(".", 1)[1])
    deadline = time.monotonic() + 60
    while True:
        with unit_of_work(url) as session:
            status = session.get(LoanApplication, app_id).status
        if status == "disbursed" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == "disbursed"
    with unit_of_work(url) as session:
        events = session.scalars(
            select(ApplicationEvent.action)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.id)
        ).all()
    assert events.count("disbursed") == 1, events
    paid = requests.get(f"{core}/_emulator/disbursements", timeout=5).json()[paid_before:]
    assert [p["amount_fen"] for p in paid] == [6_000_000]  # paid exactly once
    asked = requests.get(f"{core}/_emulator/requests", timeout=5).json()[asked_before:]
    keys = [r["key"] for r in asked if "disbursements" in r["path"]]
    assert keys == [f"sunshine-disburse-{app_id}"] * 2
    with unit_of_work(url) as session:
        loan_account = session.get(LoanApplication, app_id).loan_account
    deadline = time.monotonic() + 30
    while not _told_of(stack, "o_demo_qianyumei", loan_account) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # a moment for a duplicate
    told = _told_of(stack, "o_demo_qianyumei", loan_account)
    assert len(told) == 1, told  # the customer was told once


def _told_of(stack, openid: str, words: str) -> list[dict]:
    """The messages to `openid` that say `words`: customer-service and template messages alike."""
    got = requests.get(f"{stack.wechat_api}/_emulator/messages", params={"touser": openid}, timeout=5).json()
    return [m for m in got if words in json.dumps(m, ensure_ascii=False)]


def _report_statuses(url: str, app_id: int, until=None, timeout: float = 0) -> list[str]:
    """The application's credit-report records' statuses, once `until(statuses)` holds or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        with unit_of_work(url) as session:
            statuses = session.scalars(
                select(CreditReportRecord.status)
                .where(CreditReportRecord.application_id == app_id)
                .order_by(CreditReportRecord.id)
            ).all()
        if until is None or until(statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def test_wechat_api_slow_failing_and_token_expired(stack):
    """Answers and notices that go through the customer-service API while WeChat's API is slow, answers
    5xx, and refuses the access_token: retried, delivered once."""
    send = "/cgi-bin/message/custom/send"
    notices = [f"o_fault_notice_{i}" for i in range(6)]

    def inject():
        jobs = stack_jobs(stack)
        requests.post(f"{stack.wechat_api}/_emulator/faults", json={"path": send, "delay": 3, "count": 2}, timeout=5)
        requests.post(f"{stack.wechat_api}/_emulator/faults", json={"path": send, "status": 503, "count": 2}, timeout=5)
        requests.post(
            f"{stack.wechat_api}/_emulator/faults", json={"path": send, "errcode": 40001, "count": 1}, timeout=5
        )
        requests.post(f"{stack.wechat_api}/_emulator/expire_tokens", json=[], timeout=5)
        for openid in notices:  # e.g. a loan decision told to the customer (lending.notify)
            jobs.deliver(openid, [f"您的申请已受理（{openid}）"])

    result = crowd_during(stack, inject, after_s=8)
    assert_answered_once(stack, result)
    assert requests.get(f"{stack.wechat_api}/_emulator/faults", timeout=5).json()["pending"] == []  # all met
    calls = requests.get(f"{stack.wechat_api}/_emulator/calls", timeout=5).json()
    assert {c.get("errcode") for c in calls if c["path"] == send} >= {40001, 42001}
    for openid in notices:
        assert [m["content"] for m in _pushed(stack, openid, 1, 30)] == [f"您的申请已受理（{openid}）"]


def test_a_killed_redis_keeps_messages_and_answers_them_after_restart(stack):
    probe = WeChatUser(
        stack.web + "/wechat", SETTINGS.wechat_token, SETTINGS.wechat_appid, openid="o_fault_redis_probe"
    )
    replies = []

    def inject():
        old = stack.kill("redis")
        started = time.monotonic()
        replies.append(probe.send_text("我想问问利息咋算"))
        replies.append(time.monotonic() - started)
        stack.wait_restarted("redis", old)

    # While Redis is down every answer is an instant "please wait": the crowd sends fast, and
    # each of those messages is answered through the API once Redis is back.
    result = crowd_during(stack, inject, after_s=6, settle_s=90)
    reply, took_s = replies
    assert reply.content == HELD_FOR_LATER and reply.attempts == 1 and took_s < 5  # in WeChat's time
    answers = _pushed(stack, probe.openid, 1, 40)
    assert len(answers) == 1 and answers[0]["content"] != HELD_FOR_LATER, answers
    with unit_of_work(stack.env["DATABASE_URL"]) as session:
        assert session.scalars(
            select(ConversationMessage.status)
            .where(ConversationMessage.openid == probe.openid)
            .order_by(ConversationMessage.id)
        ).all() == ["relayed"]
    assert_answered_once(stack, result)
    assert restarts(stack, "redis") >= 1
    wait_ready(stack)


def test_a_killed_action_server(stack):
    result = crowd_during(stack, lambda: kill_and_wait(stack, "actions"), after_s=6)
    assert_answered_once(stack, result)
    wait_ready(stack)


def test_a_killed_rasa_gives_a_fallback_and_tells_an_officer(stack):
    """Last: Rasa takes a minute to load its model again; the module does not wait for it."""
    pids = []
    with unit_of_work(stack.env["DATABASE_URL"]) as session:
        before = session.scalar(select(func.max(HandOff.id))) or 0
    result = crowd_during(stack, lambda: pids.append(stack.kill("rasa")), after_s=5, settle_s=15)
    assert_answered_once(stack, result)
    replies = [m.answer for m in result.messages] + [
        m["content"]
        for m in requests.get(f"{stack.wechat_api}/_emulator/messages", timeout=5).json()
        if m["touser"].startswith(result.messages[0].openid.rsplit("_", 2)[0])
    ]
    assert BOT_UNAVAILABLE in replies
    deadline = time.monotonic() + 30
    while True:  # every hand-off it opened is put before an officer in WeCom
        with unit_of_work(stack.env["DATABASE_URL"]) as session:
            hand_offs = session.scalars(
                select(HandOff.id).where(HandOff.reason == "bot_unavailable", HandOff.id > before).order_by(HandOff.id)
            ).all()
            sent = set(
                session.scalars(
                    select(OfficerNotice.hand_off_id)
                    .where(OfficerNotice.kind == "new", OfficerNotice.status == "sent")
                    .order_by(OfficerNotice.id)
                ).all()
            )
        if hand_offs and set(hand_offs) <= sent or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert hand_offs and set(hand_offs) <= sent, (hand_offs, sent)
    stack.wait_restarted("rasa", pids[0], timeout=30)


def _redis_url(stack) -> str:
    return stack.redis_url


def stack_jobs(stack) -> Jobs:
    """The stack's job queues, as its web and workers enqueue to them."""
    return Jobs(Settings(redis_url=stack.redis_url, worker_processes=int(stack.env["WORKER_PROCESSES"])))


def _pushed(stack, openid: str, at_least: int, timeout: float) -> list[dict]:
    """The customer-service messages to `openid`, once there are `at_least` (and a moment for a duplicate)."""
    deadline = time.monotonic() + timeout
    while True:
        got = requests.get(f"{stack.wechat_api}/_emulator/messages", params={"touser": openid}, timeout=5).json()
        if len(got) >= at_least or time.monotonic() > deadline:
            time.sleep(2)
            return requests.get(f"{stack.wechat_api}/_emulator/messages", params={"touser": openid}, timeout=5).json()
        time.sleep(0.3)
