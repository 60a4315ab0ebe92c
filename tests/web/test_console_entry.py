"""录入申请 in the console through Flask's test client on a real database and Redis: an officer
finds the applicant by ID number, enters an application through the lending service, each party
with WeChat gets their request queued, the QR codes are on a printable page; a second submission
makes nothing new; another officer's customer and bad input are refused, changing nothing."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import func, select

from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, AuditEntry, Authorization, Customer, LoanApplication, Officer
from tests.web import test_console_officers as officers
from tests.web.test_console_officers import jobs_for

login = officers.login  # the fixture: a logged-in test client

ZHANG_ID = "321283197503120119"  # 张建国, farmer, line 200,000; spouse 李秀英 (no WeChat bound)
WANG_ID = "32128319820820033X"  # 王春华, farmer, WeChat o_demo_wangchunhua


def zhang(settings) -> int:
    with unit_of_work(settings.database_url) as s:
        return by_openid(s, "o_demo_zhangjianguo").id


def form_of(client, customer_id: int) -> dict:
    page = client.get(f"/console/customers/{customer_id}/apply").data.decode()
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    return {"csrf": client.csrf, "key": key}


def counts(settings) -> tuple[int, int]:
    with unit_of_work(settings.database_url) as s:
        return (
            s.scalar(select(func.count()).select_from(LoanApplication)),
            s.scalar(select(func.count()).select_from(Authorization)),
        )


def queued_requests(settings, openid: str) -> list[tuple]:
    """The authorization requests queued for this WeChat user: (text, link)."""
    return [
        (j.args[1], j.args[4])
        for j in jobs_for(settings, openid)
        if j.func_name == "conversation.notices.deliver_notice"
        and j.args[0] == openid
        and j.args[2] == "authorization_request"
    ]


def test_officer_finds_the_applicant_enters_the_application_and_the_codes_go_out(login, demo_settings):
    officer = login()
    assert "借款人身份证号" in officer.get("/console/apply").data.decode()
    found = officer.post("/console/apply", data={"csrf": officer.csrf, "id_number": ZHANG_ID.lower()})
    customer_id = zhang(demo_settings)
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/console/customers/{customer_id}/apply")

    page = officer.get(f"/console/customers/{customer_id}/apply").data.decode()
    assert "为张建国录入贷款申请" in page and "阳光e贷" in page and "富农担保贷" in page
    assert "商e贷" not in page.split('id="entry-product"')[1].split("</select>")[0]  # only the farmer's products
    assert "李**（身份证3212**********0229）" in page and "李秀英" not in page.split('id="spouse"')[1][:200]
    assert "买化肥种子" in page  # lending.purposes' examples for a farmer

    form = form_of(officer, customer_id) | {
        "product": "guaranteed_farm_loan",
        "amount": "10万",
        "term": "24",
        "purpose": "扩大养殖",
        "guarantor": WANG_ID,
    }
    resp = officer.post(f"/console/customers/{customer_id}/apply", data=form)
    page = resp.data.decode()
    assert resp.status_code == 200 and page.count('src="data:image/png;base64,') == 3
    assert "已录入张建国的富农担保贷申请（10万元，24个月）" in page
    assert "借款人本人：张建国" in page and "借款人配偶：李秀英" in page and "担保人：王春华" in page
    assert page.count("已发到本人微信") == 2 and page.count("没有绑定微信：请本人扫码") == 1
    printed = dict(
        zip(("applicant", "spouse", "guarantor"), re.findall(r'class="link">([^<]+)</p>', page), strict=True)
    )

    with unit_of_work(demo_settings.database_url) as s:
        application = s.scalar(select(LoanApplication))
        assert (application.amount, application.term_months, application.status) == (
            100_000,
            24,
            "awaiting_authorization",
        )
        assert application.purpose == "扩大养殖" and application.guarantor.name == "王春华"
        events = s.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application.id)
            .order_by(ApplicationEvent.id)
        ).all()
        assert [(e.action, e.actor) for e in events] == [
            ("created", "officer:officer01"),
            ("submitted", "officer:officer01"),
            ("authorization_requested", "system"),
            ("authorization_requests_sent", "officer:officer01"),
        ]
        assert events[0].detail == {"channel": "console"}
        assert "已发到微信：借款人本人、担保人" in events[-1].reason
        entered = s.scalar(select(AuditEntry).where(AuditEntry.action == "application.entered"))
        assert entered.actor == "officer:officer01" and entered.detail["channel"] == "console"
        requests = s.scalars(select(Authorization).order_by(Authorization.id)).all()
        assert [(a.party_role, a.requested_by) for a in requests] == [
            ("applicant", "officer:officer01"),
            ("spouse", "officer:officer01"),
            ("guarantor", "officer:officer01"),
        ]
    # each party with WeChat got the same link as printed, through the notice policy's job
    [(text, link)] = queued_requests(demo_settings, "o_demo_zhangjianguo")
    assert link == printed["applicant"] and "需要您本人授权查询征信" in text
    [(text, link)] = queued_requests(demo_settings, "o_demo_wangchunhua")
    assert link == printed["guarantor"] and text.startswith("张**申请贷款，需要您授权查询征信（担保人）")
    # the applicant is also told the application was submitted, by the lending service as in the chat
    assert any(
        j.args[2] == "application_status" and "已提交" in j.args[1]
        for j in jobs_for(demo_settings, "o_demo_zhangjianguo")
        if j.func_name == "conversation.notices.deliver_notice"
    )


def test_the_same_form_submitted_twice_makes_one_application_and_sends_nothing_again(login, demo_settings):
    officer, customer_id = login(), zhang(demo_settings)
    form = form_of(officer, customer_id) | {
        "product": "sunshine_e_loan",
        "amount": "50000",
        "term": "12",
        "purpose": "买化肥",
    }
    assert officer.post(f"/console/customers/{customer_id}/apply", data=form).status_code == 200
    before = counts(demo_settings), len(queued_requests(demo_settings, "o_demo_zhangjianguo"))

    again = officer.post(f"/console/customers/{customer_id}/apply", data=form)

    with unit_of_work(demo_settings.database_url) as s:
        application_id = s.scalar(select(LoanApplication.id))
    assert again.status_code == 303 and again.headers["Location"].endswith(f"/console/applications/{application_id}")
    assert (counts(demo_settings), len(queued_requests(demo_settings, "o_demo_zhangjianguo"))) == before == ((1, 2), 1)
    assert f"这张申请表已经提交过（申请编号{application_id}）" in officer.get(again.headers["Location"]).data.decode()


def test_another_officers_customer_is_refused_and_recorded_a_supervisor_may(login, demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        customer = s.get(Customer, zhang(demo_settings))
        customer.officer_id = s.scalar(select(Officer.id).where(Officer.username == "supervisor01"))
        customer_id = customer.id
    officer = login()
    form = {"csrf": officer.csrf, "key": "k", "product": "sunshine_e_loan", "amount": "5万", "term": "12"}
    for resp in (
        officer.get(f"/console/customers/{customer_id}/apply"),
        officer.post(f"/console/customers/{customer_id}/apply", data=form | {"purpose": "买化肥"}),
    ):
        assert resp.status_code == 403 and "这是其他客户经理的客户，只有主管可以为他录入贷款申请" in resp.data.decode()
    assert counts(demo_settings) == (0, 0)
    with unit_of_work(demo_settings.database_url) as s:
        refusals = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "application.entry_refused").order_by(AuditEntry.id)
        ).all()
        assert [(r.actor, r.subject_id, r.detail["method"]) for r in refusals] == [
            ("officer:officer01", str(customer_id), "GET"),
            ("officer:officer01", str(customer_id), "POST"),
        ]
    assert login("supervisor01").get(f"/console/customers/{customer_id}/apply").status_code == 200
    assert officer.get("/console/customers/99999/apply").status_code == 404


@pytest.mark.parametrize(
    "typed, message",
    [
        ({"product": "sunshine_e_loan", "amount": "50万"}, "阳光e贷可以贷1000元到30万元"),
        ({"product": "sunshine_e_loan", "amount": "25万"}, "金额25万元超过客户剩余可用额度20万元"),
        ({"product": "sunshine_e_loan", "amount": "五万块钱吧吧"}, "没看懂金额"),
        ({"product": "merchant_e_loan"}, "这个产品不面向农户，请从列表里为客户选择产品"),
        ({"product": ""}, "请选择贷款产品"),
        ({"product": "sunshine_e_loan", "term": "60"}, "阳光e贷的期限只有6个月、12个月、24个月、36个月"),
        ({"product": "sunshine_e_loan", "purpose": ""}, "请填写贷款用途"),
        ({"product": "guaranteed_farm_loan", "amount": "10万"}, "富农担保贷需要一名担保人：请填写担保人的身份证号"),
        ({"product": "guaranteed_farm_loan", "amount": "10万", "guarantor": ZHANG_ID}, "担保人不能是借款人本人"),
        (
            {"product": "guaranteed_farm_loan", "amount": "10万", "guarantor": "110101199003071233"},
            "没有找到身份证号为1101**********1233的客户",
        ),
        (
            {"product": "guaranteed_farm_loan", "amount": "10万", "guarantor": "11010119900307123"},
            "担保人的身份证号应为18位",
        ),
    ],
)
def test_bad_input_shows_the_form_again_as_typed_and_changes_nothing(login, demo_settings, typed, message):
    officer, customer_id = login(), zhang(demo_settings)
    form = form_of(officer, customer_id) | {"amount": "5万", "term": "12", "purpose": "买化肥 <b>种子</b>"} | typed

    resp = officer.post(f"/console/customers/{customer_id}/apply", data=form)

    page = resp.data.decode()
    assert resp.status_code == 422 and message in page, page
    assert f'value="{form["amount"]}"' in page and f'name="key" value="{form["key"]}"' in page
    if form["purpose"]:
        assert 'value="买化肥 &lt;b&gt;种子&lt;/b&gt;"' in page  # kept, escaped
    if typed.get("guarantor"):
        assert f'value="{typed["guarantor"]}"' in page
    if typed["product"] in ("sunshine_e_loan", "guaranteed_farm_loan"):
        assert re.search(rf'<option value="{typed["product"]}"[^>]*selected>', page)
    assert counts(demo_settings) == (0, 0)


def test_over_the_line_goes_in_when_the_officer_says_so(login, demo_settings):
    officer, customer_id = login(), zhang(demo_settings)
    form = form_of(officer, customer_id) | {
        "product": "sunshine_e_loan",
        "amount": "25万",
        "term": "12",
        "purpose": "盖大棚",
        "over_line": "1",
    }
    assert officer.post(f"/console/customers/{customer_id}/apply", data=form).status_code == 200
    with unit_of_work(demo_settings.database_url) as s:
        application = s.scalar(select(LoanApplication))
        assert application.status == "awaiting_authorization"
        assert [h["code"] for h in application.risk_hits] == ["R02"]  # the chat's rule: an officer reviews it


def test_lookup_refuses_unknown_or_malformed_id_numbers_and_a_missing_csrf(login, demo_settings):
    officer, customer_id = login(), zhang(demo_settings)
    resp = officer.post("/console/apply", data={"csrf": officer.csrf, "id_number": "110101199003071233"})
    page = resp.data.decode()
    assert resp.status_code == 404 and "没有找到身份证号为1101**********1233的客户" in page
    assert 'value="110101199003071233"' in page
    resp = officer.post("/console/apply", data={"csrf": officer.csrf, "id_number": "12345"})
    assert resp.status_code == 422 and "身份证号应为18位" in resp.data.decode()

    form = form_of(officer, customer_id) | {"product": "sunshine_e_loan", "amount": "5万", "term": "12", "purpose": "x"}
    for csrf in (None, "forged"):
        data = {k: v for k, v in form.items() if k != "csrf"} | ({"csrf": csrf} if csrf else {})
        resp = officer.post(f"/console/customers/{customer_id}/apply", data=data)
        assert resp.status_code == 400 and "表单已过期，请刷新页面后重试" in resp.data.decode()
    assert officer.post("/console/apply", data={"id_number": ZHANG_ID}).status_code == 400
    resp = officer.post(f"/console/customers/{customer_id}/apply", data=form | {"key": ""})  # no idempotency key
    assert resp.status_code == 400 and "表单已过期，请核对后重新提交" in resp.data.decode()
    assert 'value="5万"' in resp.data.decode()
    assert counts(demo_settings) == (0, 0)


def test_a_double_click_sends_the_form_twice_at_once_and_makes_one_application(
    login, make_client, demo_settings, monkeypatch
):
    from webhooks.console import entry

    officer, customer_id = login(), zhang(demo_settings)
    form = form_of(officer, customer_id) | {
        "product": "sunshine_e_loan",
        "amount": "5万",
        "term": "12",
        "purpose": "买化肥",
    }
    second = make_client()  # the same browser's second request, on another worker
    second.set_cookie("session", officer.get_cookie("session").value)
    applying = entry.Applications.apply

    def slow_apply(*args, **kwargs):  # the first request is still working when the second arrives
        application = applying(*args, **kwargs)
        time.sleep(0.5)
        return application

    monkeypatch.setattr(entry.Applications, "apply", slow_apply)
    answers: list[int] = []
    threads = [
        threading.Thread(
            target=lambda c=c: answers.append(c.post(f"/console/customers/{customer_id}/apply", data=form).status_code)
        )
        for c in (officer, second)
    ]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 303]
    assert counts(demo_settings) == (1, 2)  # one application, one request per party
    assert len(queued_requests(demo_settings, "o_demo_zhangjianguo")) == 1
