"""Four eyes (四眼原则): above a product's `second_approval_above` an officer's approval waits
for a second approval by a supervisor who is not the same person; below it one suffices."""

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from lending.applications import SecondApprovalRequired, awaiting_second_approval, officer_queue
from lending.catalog import PRODUCTS_FILE, ProductFileError, read_products
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, LoanApplication, Officer
from tests.unit.lending_helpers import T0, service
from tests.unit.test_lending_applications import apply_zhang, officer, zhang_reports

LIMIT = 200_000  # 阳光e贷's second_approval_above in products.yml


def under_review(db_url, svc, amount, key="k1"):
    app_id = apply_zhang(db_url, svc, amount=amount, key=key)
    with unit_of_work(db_url) as s:
        assert s.get(LoanApplication, app_id).product.second_approval_above == LIMIT
        svc.report_arrived(s, app_id, zhang_reports())
    return app_id


def second_supervisor(s) -> Officer:
    other = Officer(
        username="supervisor02",
        display_name="吴主任",
        role="supervisor",
        password_hash=generate_password_hash("x" * 12),
    )
    s.add(other)
    s.flush()
    return other


def events(s, app_id):
    return s.scalars(
        select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
    ).all()


def test_below_the_amount_one_officers_approval_suffices(demo_db_url):
    svc, _ = service()
    app_id = under_review(demo_db_url, svc, LIMIT)  # exactly the amount: not above it
    with unit_of_work(demo_db_url) as s:
        assert svc.approve(s, app_id, officer(s), "同意").status == "approved"


def test_one_officer_alone_cannot_approve_above_the_amount_a_supervisor_confirms(demo_db_url):
    svc, told = service()
    app_id = under_review(demo_db_url, svc, LIMIT + 1)
    heard = len(told.sent)
    with unit_of_work(demo_db_url) as s:
        app = svc.approve(s, app_id, officer(s), "收入稳定，同意")
        assert (app.status, app.first_approved_at) == ("under_review", T0)
    assert len(told.sent) == heard  # the customer hears nothing until the decision is made
    with unit_of_work(demo_db_url) as s:
        app = s.get(LoanApplication, app_id)
        assert awaiting_second_approval(app).username == "officer01"
        assert [a.id for a in s.scalars(officer_queue())] == [app_id]  # still waiting in the queue
        first = events(s, app_id)[-1]
        assert (first.actor, first.action, first.to_status, first.reason) == (
            "officer:officer01",
            "first_approval",
            "under_review",
            "收入稳定，同意",
        )
        with pytest.raises(SecondApprovalRequired, match="只有主管|主管复核"):
            svc.approve(s, app_id, officer(s), "再同意一次")  # the same officer again
        app = svc.approve(s, app_id, officer(s, "supervisor01"), "复核同意")
        assert app.status == "approved"
    with unit_of_work(demo_db_url) as s:
        last = events(s, app_id)[-1]
        assert (last.actor, last.to_status, last.reason, last.detail) == (
            "officer:supervisor01",
            "approved",
            "复核同意",
            {"first_approver": "officer01"},
        )
        assert awaiting_second_approval(s.get(LoanApplication, app_id)) is None
    assert told.sent[-1][1].startswith("好消息！")


def test_the_same_person_cannot_be_both_approvers(demo_db_url):
    svc, _ = service()
    app_id = under_review(demo_db_url, svc, 250_000)
    with unit_of_work(demo_db_url) as s:
        supervisor = officer(s, "supervisor01")
        svc.approve(s, app_id, supervisor, "同意")  # a supervisor's own approval needs a second too
        with pytest.raises(SecondApprovalRequired, match="不能是审批人本人"):
            svc.approve(s, app_id, supervisor, "复核同意")
        with pytest.raises(SecondApprovalRequired, match="不能是审批人本人"):
            svc.reject(s, app_id, supervisor, "改主意")
        assert s.get(LoanApplication, app_id).status == "under_review"
        assert svc.approve(s, app_id, second_supervisor(s), "复核同意").status == "approved"


def test_a_non_supervisor_cannot_confirm_or_reject_a_supervisor_can_reject(demo_db_url):
    svc, told = service()
    app_id = under_review(demo_db_url, svc, 250_000)
    with unit_of_work(demo_db_url) as s:
        supervisor = officer(s, "supervisor01")
        svc.approve(s, app_id, supervisor, "同意")
        colleague = Officer(username="officer02", display_name="赵经理", role="officer", password_hash="x")
        s.add(colleague)
        s.flush()
        for decide in (svc.approve, svc.reject):
            with pytest.raises(SecondApprovalRequired, match="需要主管复核"):
                decide(s, app_id, colleague, "同意")
        assert s.get(LoanApplication, app_id).status == "under_review"
        app = svc.reject(s, app_id, second_supervisor(s), "负债偏高，复核不通过")
        assert app.status == "rejected"
        assert events(s, app_id)[-1].detail == {"first_approver": "supervisor01"}
    assert "没有通过审批" in told.sent[-1][1]


def test_a_village_batch_leaves_what_needs_two_approvers(demo_db_url):
    svc, _ = service()
    big = under_review(demo_db_url, svc, 250_000)
    with unit_of_work(demo_db_url) as s:
        village = s.get(LoanApplication, big).customer.village
        report = svc.approve_village(s, village, officer(s, "supervisor01"), "整村批量审批", max_amount=300_000)
        assert (report.approved, report.over_limit) == ([], [big])
        assert s.get(LoanApplication, big).first_approved_by is None


def test_the_products_file_keeps_the_amount_between_the_automatic_limit_and_the_largest(tmp_path):
    source = PRODUCTS_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "products.yml"
    bad.write_text(source.replace("second_approval_above: 200000", "second_approval_above: 50000"), encoding="utf-8")
    with pytest.raises(ProductFileError, match="sunshine_e_loan.*second_approval_above"):
        read_products(bad)
    assert {p["code"]: p["second_approval_above"] for p in read_products()}["guaranteed_farm_loan"] == 300_000
