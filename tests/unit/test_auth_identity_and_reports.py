"""auth_flow's second factor (the party's own WeChat, an SMS code, the mini-program login), the
reports' query as a background job that survives a process dying mid-query, and the officer
told of each consent and of the reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from rq import Queue
from rq.worker import SimpleWorker
from sqlalchemy import select, update

from auth_flow import reports
from auth_flow.__main__ import main as auth_flow_main
from auth_flow.identity import check_identity, check_identity_wxa, send_sms_code
from auth_flow.tokens import StepRefused
from clients.bureau import BureauClient
from clients.wechat import WeChatApi
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, queue_name
from sunshine.models import (
    ApplicationEvent,
    AuditEntry,
    Authorization,
    ConsentEvidence,
    CreditReportRecord,
    Customer,
    LoanApplication,
    utcnow,
)
from sunshine.redis import connect
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import service as lending_service
from tests.unit.test_auth_flow import (
    CLIENT,
    MAX,
    authorize,
    id_digits,
    sms_code,
)


def identity(url, token, name, digits=None, **factor):
    with unit_of_work(url) as s:
        return check_identity(s, TEST_SECRET, token, name, digits or id_digits(s, token), CLIENT, MAX, **factor)


def last_evidence(url) -> ConsentEvidence:
    with unit_of_work(url) as s:
        record = s.scalar(select(ConsentEvidence).order_by(ConsentEvidence.id.desc()).limit(1))
        s.expunge(record)
        return record


def test_a_party_with_a_bound_wechat_must_open_the_page_in_that_wechat(demo_settings, application):
    url, (_, tokens, names) = demo_settings.database_url, application
    token, name = tokens["applicant"], names["applicant"]  # 张建国: o_demo_zhangjianguo
    with pytest.raises(StepRefused, match="微信里打开"):
        identity(url, token, name)  # no WeChat identity: not counted
    with pytest.raises(StepRefused, match="短信验证码"):
        with unit_of_work(url) as s:
            send_sms_code(s, TEST_SECRET, token, None, CLIENT)
    out = identity(url, token, name, wechat_openid="o_demo_wangchunhua")  # the right name, another WeChat
    assert not out.ok and "不是被查询人本人的微信" in out.message and out.attempts_left == 4
    assert last_evidence(url).detail["factor_ok"] is False
    assert identity(url, token, name, wechat_openid="o_demo_zhangjianguo").ok
    record = last_evidence(url)
    assert record.event == "identity_checked" and record.detail["factor"] == "wechat_oauth"
    assert len(record.detail["wechat_openid_sha256"]) == 64


def test_a_party_without_a_bound_wechat_passes_an_sms_code_to_the_phone_on_file(demo_settings, application, sms):
    url, (_, tokens, names) = demo_settings.database_url, application
    token, name = tokens["spouse"], names["spouse"]  # 李秀英: no WeChat bound, phone 13912340002
    client, texts = sms
    with pytest.raises(StepRefused, match="获取短信验证码"):
        identity(url, token, name)
    requests.post(f"{client.base_url}/_emulator/faults", json={"count": 1, "status": 503})
    with pytest.raises(StepRefused, match="短信发送失败"):
        sms_code(sms, token, url)
    with unit_of_work(url) as s:
        assert s.scalar(select(Authorization.sms_sends).where(Authorization.party_role == "spouse")) == 0
    code = sms_code(sms, token, url)
    assert [t["phone"] for t in texts] == ["13912340002"] and "5分钟内有效" in texts[0]["content"]
    with pytest.raises(StepRefused, match="60秒"):  # no second text within a minute
        sms_code(sms, token, url)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    out = identity(url, token, name, sms_code=wrong)
    assert not out.ok and "验证码不正确" in out.message and out.attempts_left == 4
    with unit_of_work(url) as s:  # five minutes later the right code no longer works
        s.execute(
            update(Authorization)
            .where(Authorization.party_role == "spouse")
            .values(sms_code_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert identity(url, token, name, sms_code=code).attempts_left == 3
    with unit_of_work(url) as s:  # a minute after the first text, a new code can be had
        s.execute(
            update(Authorization)
            .where(Authorization.party_role == "spouse")
            .values(sms_code_expires_at=utcnow() + timedelta(minutes=3))
        )
    code = sms_code(sms, token, url)
    out = identity(url, token, name, sms_code=code)
    assert out.ok and out.attempts_left == 3
    record = last_evidence(url)
    assert record.detail["factor"] == "sms_code" and record.detail["phone"] == "139****0002"
    with unit_of_work(url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "spouse"))
        assert auth.sms_code_hash is None and auth.sms_sends == 2 and auth.attempts == 2
        assert code not in str([e.detail for e in s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id))])


def test_the_mini_program_login_must_be_the_party_s_own_wechat(demo_settings, application):
    """WeChat gives a person another openid in the mini-program than in the Official Account: the
    party is recognised by the mini-program openid bound to them or by their UnionID."""
    url, (_, tokens, _) = demo_settings.database_url, application
    with unit_of_work(url) as s:  # 王春华 bound in the mini-program; 李秀英 bound nowhere
        s.execute(update(Customer).where(Customer.wechat_openid == "o_demo_wangchunhua").values(mp_openid="m_wang"))
        s.execute(update(Customer).where(Customer.unionid == "u_demo_lixiuying").values(unionid=None))
    emulator = wechat_app(demo_settings)
    with serve_in_thread(emulator) as base:
        api = WeChatApi(
            base,
            demo_settings.wechat_appid,
            demo_settings.wechat_secret,
            demo_settings.wxa_appid,
            demo_settings.wxa_secret,
        )

        def wx_login(token, openid, unionid=None):
            code = requests.post(f"{base}/_emulator/jscodes", json={"openid": openid, "unionid": unionid}).json()
            with unit_of_work(url) as s:
                return check_identity_wxa(s, api, tokens[token], code["code"], CLIENT, MAX)

        out = wx_login("guarantor", "m_zhang", "u_demo_zhangjianguo")  # 张建国, by his UnionID
        assert not out.ok and "不是被查询人本人的微信" in out.message
        assert not wx_login("guarantor", "o_demo_wangchunhua").ok  # an Official Account openid is no proof here
        assert wx_login("guarantor", "m_wang").ok
        assert last_evidence(url).detail == {"method": "wxa_login", "factor": "wxa_login"}
        assert wx_login("applicant", "m_zhang", "u_demo_zhangjianguo").ok
        with pytest.raises(StepRefused, match="没有和银行客户信息绑定"):
            wx_login("spouse", "m_anyone")


def consent_all(settings, application, sms):
    app_id, tokens, names = application
    for role in tokens:
        authorize(settings.database_url, tokens[role], names[role], sms, settings.redis_url)
    return app_id


class Notices:
    """An OfficerNotifier that keeps what it was given."""

    def __init__(self):
        self.sent = []

    def __call__(self, session, officer_id, text):
        self.sent.append((officer_id, text))


def test_the_last_consent_s_job_fetches_the_reports_in_a_worker_and_the_officer_is_told(
    demo_settings, application, bureau, sms, monkeypatch
):
    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id = consent_all(settings, application, sms)
    monkeypatch.setattr("auth_flow.reports.current_settings", lambda: settings)
    Jobs(settings).fetch_reports(app_id)
    connection = connect(settings.redis_url)
    queue = Queue(queue_name(f"application:{app_id}", settings.worker_processes), connection=connection)
    assert queue.count == 1 and state["queries"] == []
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert len(state["queries"]) == 3
    with unit_of_work(settings.database_url) as s:
        app = s.get(LoanApplication, app_id)
        assert app.status == "under_review"
        actions = [e.action for e in app.events]
        notices = [
            a.detail["text"]
            for a in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "officer.notified").order_by(AuditEntry.id)
            )
        ]
        officer = str(app.customer.officer_id)
        assert {
            a.subject_id
            for a in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "officer.notified").order_by(AuditEntry.id)
            )
        } == {officer}
    assert actions.count("authorization_consented") == 3
    assert actions.index("credit_reports_received") < actions.index("reports_arrived")
    assert "还需：" in notices[0] and "全部授权完成" in notices[2] and "征信报告已返回" in notices[3]


def test_a_query_stuck_in_querying_is_run_again_by_the_sweep_under_the_same_key(
    demo_settings, application, bureau, sms
):
    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id = consent_all(settings, application, sms)
    # A worker claims the queries, the bureau answers the first one, and the worker dies.
    _, jobs = reports._claim(settings, app_id, retry_failed=False)
    role, id_number, name, auth_id = jobs[0]
    first = BureauClient(url).query_report(id_number, name, auth_id)
    svc, _ = lending_service()
    notices = Notices()
    assert reports.sweep_reports(settings, applications=svc, notify=notices) == {}  # left to the consents' job
    with unit_of_work(settings.database_url) as s:  # SWEEP_AFTER_S later
        s.execute(update(Authorization).values(consented_at=utcnow() - timedelta(seconds=reports.SWEEP_AFTER_S + 1)))
    assert reports.sweep_reports(settings, applications=svc, notify=notices) == {app_id: "claimed_elsewhere"}
    with unit_of_work(settings.database_url) as s:  # REPORT_QUERY_STALE_S later
        s.execute(
            update(CreditReportRecord).values(
                started_at=utcnow() - timedelta(seconds=settings.report_query_stale_s + 1)
            )
        )
    assert reports.sweep_reports(settings, applications=svc, notify=notices) == {app_id: "received"}
    assert len(state["queries"]) == 3  # the re-query of the first one was not a second query
    with unit_of_work(settings.database_url) as s:
        record = s.scalar(select(CreditReportRecord).where(CreditReportRecord.authorization_id == int(auth_id)))
        assert record.report_id == first.report_id and record.status == "received"
        assert s.scalar(
            select(AuditEntry.detail)
            .where(AuditEntry.action == "credit_reports.querying")
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )["requeried"] == ["applicant", "spouse", "guarantor"]
    assert [t for _, t in notices.sent if "征信报告已返回" in t]
    assert reports.sweep_reports(settings, applications=svc, notify=notices) == {}


def test_a_report_job_put_back_after_its_worker_died_queries_again_at_once_and_decides_once(
    demo_settings, application, bureau, sms, monkeypatch
):
    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id = consent_all(settings, application, sms)
    monkeypatch.setattr("auth_flow.reports.current_settings", lambda: settings)
    # The worker claimed the queries, the bureau answered one, and the worker was killed.
    _, jobs = reports._claim(settings, app_id, retry_failed=False)
    BureauClient(url).query_report(*jobs[0][1:])
    connection = connect(settings.redis_url)
    queue = Queue(queue_name(f"application:{app_id}", settings.worker_processes), connection=connection)
    fresh = queue.enqueue(reports.fetch_job, app_id)
    again = queue.enqueue(reports.fetch_job, app_id, meta={"abandoned": 1})
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert fresh.return_value() == "claimed_elsewhere"  # not known dead: left to the sweep
    assert again.return_value() == "received"  # the restarted worker's job takes them back
    assert len(state["queries"]) == 3  # the re-query of the first one was not a second query
    with unit_of_work(settings.database_url) as s:
        app = s.get(LoanApplication, app_id)
        assert app.status == "under_review" and [e.action for e in app.events].count("reports_arrived") == 1


def test_a_failed_query_tells_the_officer_and_retry_reports_fetches_it(
    demo_settings, application, bureau, sms, monkeypatch, capsys
):
    url, state = bureau
    monkeypatch.setattr(reports, "BACKOFF_S", 0.01)
    settings = replace(demo_settings, bureau_url=url, bureau_attempts=1)
    app_id = consent_all(settings, application, sms)
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "count": 3, "status": 503})
    svc, _ = lending_service()
    notices = Notices()
    assert reports.fetch_reports(settings, app_id, applications=svc, notify=notices).state == "failed"
    assert "查询失败" in notices.sent[-1][1] and "担保人" in notices.sent[-1][1]
    with unit_of_work(settings.database_url) as s:
        assert (
            s.scalar(select(ApplicationEvent.action).order_by(ApplicationEvent.id.desc()).limit(1))
            == "credit_reports_failed"
        )
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("BUREAU_URL", url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert auth_flow_main(["retry-reports", "999999"]) == 2
    assert auth_flow_main(["retry-reports", str(app_id)]) == 0
    assert f"application {app_id}: received" in capsys.readouterr().out
    assert auth_flow_main(["retry-reports", str(app_id)]) == 1  # nothing left to query
    assert len(state["queries"]) == 3
