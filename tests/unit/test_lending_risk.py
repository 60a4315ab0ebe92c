"""Risk-interception rules at submission and when the credit reports arrive."""

import pytest
from sqlalchemy import select

from lending.applications import IllegalTransition
from lending.catalog import sync_products
from lending.customers import by_id_number, by_openid
from lending.risk import RuleBook, RuleFileError, watch
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, AuditEntry, LoanApplication, WatchListEntry
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import import_village, person_id, report, service


def apply(db_url, svc, customer_id, amount=30_000, key="k", product="sunshine_e_loan"):
    with unit_of_work(db_url) as s:
        return svc.apply(s, customer_id, product, amount, 12, idempotency_key=key).id


def applicant_id(db_url, id_number):
    with unit_of_work(db_url) as s:
        return by_id_number(s, TEST_SECRET, id_number).id


def codes(db_url, app_id):
    with unit_of_work(db_url) as s:
        app = s.get(LoanApplication, app_id)
        return app.status, [h["code"] for h in app.risk_hits], app.risk_hits


def test_too_old_an_applicant_is_rejected_at_submission(demo_db_url):
    svc, told = service()
    with unit_of_work(demo_db_url) as s:
        wu = by_id_number(s, TEST_SECRET, "321283195809301116")  # 吴德福, born 1958
        wu.wechat_openid = "o_wu"
    app_id = apply(demo_db_url, svc, wu.id)
    status, hit_codes, hits = codes(demo_db_url, app_id)
    assert (status, hit_codes) == ("rejected", ["R01"])
    assert hits[0]["description"] == "申请人68岁，不在18至65岁的准入年龄内" and hits[0]["stage"] == "submission"
    with unit_of_work(demo_db_url) as s:
        last = s.scalars(select(ApplicationEvent).order_by(ApplicationEvent.id.desc())).first()
        assert (last.actor, last.to_status, last.detail["rules"]) == ("risk_rules", "rejected", ["R01"])
    assert told.sent[-1][0] == "o_wu" and "没有通过审批" in told.sent[-1][1]
    assert "68岁" not in told.sent[-1][1]  # reasons are for officers


def test_a_watched_applicant_is_rejected(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        watch(s, TEST_SECRET, "321283196802010556", "涉诉未结", "supervisor01")
        watch(s, TEST_SECRET, "321283196802010556", "again", "supervisor01")  # once is enough
    with unit_of_work(demo_db_url) as s:
        entry = s.scalar(select(WatchListEntry))
        assert entry.id_masked == "3212**********0556" and entry.reason == "涉诉未结"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "watch_list.added")).actor == "supervisor01"
    status, hit_codes, hits = codes(
        demo_db_url, apply(demo_db_url, svc, applicant_id(demo_db_url, "321283196802010556"))
    )
    assert (status, hit_codes, hits[0]["description"]) == ("rejected", ["R06"], "申请人在关注名单上：涉诉未结")


def test_over_the_remaining_line_goes_to_an_officer(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        customer = by_openid(s, "o_demo_wangchunhua")  # line 8万, spouse 刘美兰
    app_id = apply(demo_db_url, svc, customer.id, amount=90_000)  # within the automatic limit, above the line
    assert codes(demo_db_url, app_id)[:2] == ("awaiting_authorization", ["R02"])
    with unit_of_work(demo_db_url) as s:
        app = svc.report_arrived(
            s, app_id, {"applicant": report("32128319820820033X"), "spouse": report("321283198401150442")}
        )
        assert (app.status, app.review_mode) == ("under_review", "officer")
        assert app.risk_hits[0]["description"] == "申请金额90000元超过剩余可用额度80000元"
        assert app.risk_hits[0]["stage"] == "report"


def test_too_many_applications_in_a_short_time(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        customer_id = by_openid(s, "o_demo_zhangjianguo").id
    for n in range(3):
        app_id = apply(demo_db_url, svc, customer_id, key=f"k{n}")
        assert codes(demo_db_url, app_id)[1] == []
        with unit_of_work(demo_db_url) as s:
            svc.withdraw(s, app_id)
    status, hit_codes, hits = codes(demo_db_url, apply(demo_db_url, svc, customer_id, key="k3"))
    assert (status, hit_codes, hits[0]["description"]) == (
        "awaiting_authorization",
        ["R03"],
        "近30天内已申请4次，超过3次",
    )


def test_a_phone_shared_outside_the_household_and_an_id_in_two_households(db_url, tmp_path):
    head, spouse, other = person_id("19800101", seq=1), person_id("19820202", seq=2), person_id("19790303", seq=3)
    son = person_id("20000404", seq=4)
    with unit_of_work(db_url) as s:
        sync_products(s)
        report_ = import_village(
            s,
            tmp_path,
            [
                f"柳树村,甲,{head},13800000001,farmer,100000,2027-12-31,spouse:乙:{spouse}:13800000001;child:丁:{son}:,",
                f"柳树村,丙,{other},13800000001,farmer,100000,2027-12-31,,",
                f"柳树村,丁,{son},13800000004,farmer,50000,2027-12-31,,",
            ],
        )
        assert report_.errors == []
    svc, _ = service()
    # 甲 shares the phone with the spouse (same household: no hit) and with 丙 (another household: a hit).
    assert codes(db_url, apply(db_url, svc, applicant_id(db_url, head)))[:2] == ("awaiting_authorization", ["R04"])
    # 丁 is a child in 甲's household and heads a household of his own.
    status, hit_codes, hits = codes(db_url, apply(db_url, svc, applicant_id(db_url, son), key="k2"))
    assert hit_codes == ["R05"] and hits[0]["description"] == "申请人的身份证号出现在2户家庭的授信档案中"


@pytest.mark.parametrize(
    "risk_digit, party, status, expected",
    [
        (9, "applicant", "rejected", "R07"),  # overdue now: refused (and many recent queries, R09)
        (9, "spouse", "rejected", "R07"),
        (7, "applicant", "under_review", "R08"),  # overdue in the past, repaid: an officer decides
    ],
)
def test_negative_items_in_a_credit_report(db_url, tmp_path, risk_digit, party, status, expected):
    clean, flagged = person_id("19800101", seq=1), person_id("19810101", risk_digit, seq=2)
    head, spouse = (flagged, clean) if party == "applicant" else (clean, flagged)
    with unit_of_work(db_url) as s:
        sync_products(s)
        import_village(
            s, tmp_path, [f"柳树村,甲,{head},13800000001,farmer,100000,2027-12-31," f"spouse:乙:{spouse}:13800000002,"]
        )
    svc, _ = service()
    app_id = apply(db_url, svc, applicant_id(db_url, head))
    assert codes(db_url, app_id)[:2] == ("awaiting_authorization", [])  # reports are read only when they arrive
    with unit_of_work(db_url) as s:
        app = svc.report_arrived(s, app_id, {"applicant": report(head), "spouse": report(spouse)})
        assert app.status == status and app.risk_hits[0]["code"] == expected
        assert app.risk_hits[0]["description"].startswith("申请人" if party == "applicant" else "配偶")


def test_reports_arriving_twice_change_nothing_the_second_time(db_url, tmp_path):
    head = person_id("19800101", risk_digit=7)
    with unit_of_work(db_url) as s:
        sync_products(s)
        import_village(s, tmp_path, [f"柳树村,甲,{head},13800000001,farmer,100000,2027-12-31,,"])
    svc, _ = service()
    app_id = apply(db_url, svc, applicant_id(db_url, head))
    with unit_of_work(db_url) as s:
        svc.report_arrived(s, app_id, {"applicant": report(head)})
        with pytest.raises(IllegalTransition, match="审核中"):
            svc.report_arrived(s, app_id, {"applicant": report(person_id("19800101"))})  # a clean one
    assert codes(db_url, app_id)[:2] == ("under_review", ["R08"])


def test_the_rules_file_is_checked_when_loaded(tmp_path):
    assert {r.check for r in RuleBook.load().rules} >= {
        "age",
        "over_remaining_line",
        "frequent_applications",
        "shared_phone",
        "id_in_several_households",
        "watch_list",
        "current_overdue",
        "past_overdue",
    }
    bad = {
        "unknown check": "- {code: X1, check: horoscope, outcome: reject, description: 不吉利}",
        "outcome must be": "- {code: X1, check: watch_list, outcome: maybe, description: '{reason}'}",
        "unknown agee": "- {code: X1, check: age, outcome: reject, params: {min_age: 18, max_age: 65}, "
        "description: '{agee}岁'}",
        "unique": "- {code: X1, check: watch_list, outcome: reject, description: a}\n"
        "- {code: X1, check: watch_list, outcome: review, description: b}",
    }
    for message, text in bad.items():
        path = tmp_path / "rules.yml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RuleFileError, match=message):
            RuleBook.load(path)
