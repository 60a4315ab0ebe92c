"""Credit reports from the bureau emulator, village batch approval, credit-line matching, WeChat notices."""

from dataclasses import replace

from rq import Queue
from sqlalchemy import select

from auth_flow.reports import fetch_reports, received_reports
from conversation.notices import deliver_notice
from emulators import serve_in_thread
from emulators.bureau.api import create_app
from lending.credit_lines import current_line
from lending.customers import by_id_number, by_openid
from lending.notify import WeChatNotifier
from lending.reports import parties
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, queue_name
from sunshine.models import Authorization, LoanApplication, Officer
from sunshine.redis import connect
from sunshine.settings import Settings
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import T0, import_village, person_id, report, service


def consent(s, app, role, person):
    s.add(
        Authorization(
            application_id=app.id,
            customer_id=app.customer_id,
            party_role=role,
            party_name=person.name,
            party_id_masked=person.id_masked,
            purpose="贷款审批",
            requested_by="bot",
            token_hash=f"{app.id}-{role}",
            status="consented",
            expires_at=T0,
        )
    )


def test_a_guaranteed_loan_needs_three_reports_from_the_bureau(demo_db_url):
    svc, told = service()
    with unit_of_work(demo_db_url) as s:
        head = by_openid(s, "o_demo_zhangjianguo")
        guarantor = by_openid(s, "o_demo_wangchunhua")
        app = svc.apply(
            s, head.id, "guaranteed_farm_loan", 100_000, 24, idempotency_key="g1", guarantor_id=guarantor.id
        )
        people = parties(s, app)
        assert {role: p.name for role, p in people.items()} == {
            "applicant": "张建国",
            "spouse": "李秀英",
            "guarantor": "王春华",
        }
        for role, person in list(people.items())[:2]:
            consent(s, app, role, person)
        app_id = app.id
    assert "本人张**、配偶李**、担保人王**" in told.sent[-1][1]
    with serve_in_thread(create_app()) as url:
        settings = replace(Settings(), database_url=demo_db_url, secret_key=TEST_SECRET, bureau_url=url)
        assert fetch_reports(settings, app_id, applications=svc).missing == ["guarantor"]
        with unit_of_work(demo_db_url) as s:
            consent(s, s.get(LoanApplication, app_id), "guarantor", people["guarantor"])
        assert fetch_reports(settings, app_id, applications=svc).state == "received"
    with unit_of_work(demo_db_url) as s:
        reports = received_reports(s, TEST_SECRET, app_id)
        assert {r: rep.subject["name"] for r, rep in reports.items()} == {
            "applicant": "张建国",
            "spouse": "李秀英",
            "guarantor": "王春华",
        }
        app = s.get(LoanApplication, app_id)
        # Guaranteed loans are never approved automatically (limit 0): an officer decides.
        assert (app.status, app.review_mode, app.risk_hits) == ("under_review", "officer", [])


def test_a_village_s_small_pending_loans_are_approved_in_one_run(db_url, tmp_path):
    ids = [person_id(f"198{n}0101", risk_digit=7, seq=n) for n in range(4)]  # past overdue: an officer reviews
    with unit_of_work(db_url) as s:
        from sunshine.demo import load_demo

        load_demo(s, TEST_SECRET)
        import_village(
            s, tmp_path, [f"柳树村,户{n},{i},1380000000{n},farmer,200000,2027-12-31,," for n, i in enumerate(ids)]
        )
    svc, told = service()
    app_ids = []
    for n, id_number in enumerate(ids):
        with unit_of_work(db_url) as s:
            customer = by_id_number(s, TEST_SECRET, id_number)
            customer.wechat_openid = f"o_liushu_{n}"
            app = svc.apply(
                s, customer.id, "sunshine_e_loan", 150_000 if n == 3 else 30_000, 12, idempotency_key=f"v{n}"
            )
            svc.report_arrived(s, app.id, {"applicant": report(id_number)})
            assert (app.status, app.risk_hits[0]["code"]) == ("under_review", "R08")
            app_ids.append(app.id)
    with unit_of_work(db_url) as s:  # another village's application stays where it is
        other = svc.apply(
            s, by_openid(s, "o_demo_zhangjianguo").id, "sunshine_e_loan", 150_000, 12, idempotency_key="other"
        )
        svc.report_arrived(
            s, other.id, {"applicant": report("321283197503120119"), "spouse": report("321283197706050229")}
        )
    seen = []
    with unit_of_work(db_url) as s:
        officer = s.scalar(select(Officer).where(Officer.username == "supervisor01"))
        result = svc.approve_village(s, "柳树村", officer, "整村批量审批", progress=lambda d, t: seen.append((d, t)))
    assert (result.approved, result.over_limit) == (app_ids[:3], app_ids[3:])
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with unit_of_work(db_url) as s:
        statuses = {a.id: a.status for a in s.scalars(select(LoanApplication).order_by(LoanApplication.id))}
        assert [statuses[i] for i in app_ids] == ["approved"] * 3 + ["under_review"]
        assert statuses[other.id] == "under_review"
        assert s.get(LoanApplication, app_ids[0]).events[-1].actor == "officer:supervisor01"
    assert sorted(o for o, text in told.sent if "审批通过" in text) == ["o_liushu_0", "o_liushu_1", "o_liushu_2"]


def test_what_a_customer_can_borrow_and_which_products_fit(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        wang = by_openid(s, "o_demo_wangchunhua")  # farmer, line 8万
        line = current_line(s, wang, today=T0.date())
        assert (line.amount, line.used, line.pending, line.available) == (80_000, 0, 0, 80_000)
        assert line.products == ("阳光e贷", "富农担保贷")
        svc.apply(s, wang.id, "sunshine_e_loan", 40_000, 12, idempotency_key="w1")
        line = current_line(s, wang, today=T0.date())
        assert (line.pending, line.available) == (40_000, 40_000)
        assert line.products == ("阳光e贷",)  # 富农担保贷 starts at 5万


def test_the_wechat_notifier_queues_a_notice(settings):
    WeChatNotifier(Jobs(settings))("o_demo_zhangjianguo", "您的阳光e贷申请已审批通过")
    WeChatNotifier(Jobs(settings))("o_demo_zhangjianguo", "已放款", kind="disbursement", application_id=7)
    queue = Queue(queue_name("o_demo_zhangjianguo", settings.worker_processes), connection=connect(settings.redis_url))
    first, second = queue.jobs
    assert first.func is deliver_notice
    assert first.args == ("o_demo_zhangjianguo", "您的阳光e贷申请已审批通过", "notice", None, None, {})
    assert second.args == ("o_demo_zhangjianguo", "已放款", "disbursement", 7, None, {})
