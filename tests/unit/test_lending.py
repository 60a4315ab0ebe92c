from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lending.credit_lines import current_line
from lending.customers import by_id_number, by_openid
from lending.identity import InvalidIdNumber, check_digit, normalize_id_number
from lending.village_file import import_file
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.demo import demo_valid_until, load_demo
from sunshine.models import AuditEntry, CreditLine, Customer
from tests.conftest import TEST_SECRET

HEADER = "village,household_head,id_number,phone,customer_type,credit_line,valid_until,members,tags\n"


def test_check_digit_gb11643():
    assert check_digit("11010519491231002") == "X"
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    with pytest.raises(InvalidIdNumber, match="校验位"):
        normalize_id_number("110105194912310021")
    with pytest.raises(InvalidIdNumber, match="18位"):
        normalize_id_number("12345")


def test_demo_customer_line(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        line = current_line(s, customer, today=clock.today())
    assert customer.name == "张建国" and customer.id_masked == "3212**********0119"
    assert (line.amount, line.used, line.available) == (200000, 0, 200000)
    assert "阳光e贷" in line.products and "商e贷" not in line.products


def test_expired_line_is_not_offered(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        assert current_line(s, customer, today=demo_valid_until()) is not None
        assert current_line(s, customer, today=demo_valid_until() + timedelta(days=1)) is None


def test_demo_lines_are_valid_until_the_end_of_next_year_whatever_the_year(db_url):
    with clock.travel_to(date(2031, 6, 1)), unit_of_work(db_url) as s:
        load_demo(s, TEST_SECRET)
        line = current_line(s, by_openid(s, "o_demo_zhangjianguo"))
        assert line is not None and line.valid_until == date(2032, 12, 31)


def test_import_reports_bad_rows_keeps_good_ones_and_is_idempotent(db_url, tmp_path):
    path = tmp_path / "village.csv"
    path.write_text(
        HEADER
        + "黄桥村,甲,11010519491231002X,13900000001,farmer,50000,2027-12-31,,\n"
        + "黄桥村,乙,110105194912310021,13900000002,farmer,50000,2027-12-31,,\n"
        + "黄桥村,丙,110101199003070011,13900000003,fisher,50000,2027-12-31,,\n",
        encoding="utf-8",
    )
    for expected_created in (1, 0):
        with unit_of_work(db_url) as s:
            report = import_file(s, TEST_SECRET, path)
        assert report.created == expected_created
        assert [line for line, _ in report.errors] == [3, 4]
        assert "校验位" in report.errors[0][1] and "客户类型" in report.errors[1][1]
    with unit_of_work(db_url) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1
        stored = s.scalar(select(Customer))
        assert "11010519491231002X" not in (stored.id_sealed + stored.id_fingerprint + stored.id_masked)
        assert by_id_number(s, TEST_SECRET, "11010519491231002x").name == "甲"


def test_changed_line_is_audited(db_url, tmp_path):
    path = tmp_path / "village.csv"
    row = "黄桥村,甲,11010519491231002X,13900000001,farmer,{},2027-12-31,,\n"
    path.write_text(HEADER + row.format(50000), encoding="utf-8")
    with unit_of_work(db_url) as s:
        import_file(s, TEST_SECRET, path)
    path.write_text(HEADER + row.format(80000), encoding="utf-8")
    with unit_of_work(db_url) as s:
        assert import_file(s, TEST_SECRET, path).updated == 1
    with unit_of_work(db_url) as s:
        assert s.scalar(select(CreditLine.amount)) == 80000
        raised = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit_line.raised"))
        assert raised.detail["old"] == 50000 and raised.detail["new"] == 80000


def test_spouse_from_either_side_of_the_household(demo_db_url):
    from lending.customers import spouse_of

    with unit_of_work(demo_db_url) as s:
        head = by_openid(s, "o_demo_zhangjianguo")
        spouse = spouse_of(s, head)
        assert spouse.name == "李秀英" and spouse_of(s, spouse).id == head.id
        assert spouse_of(s, by_openid(s, "o_demo_qianyumei")) is None
