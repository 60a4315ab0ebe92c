"""Village credit files in batches, and the `python -m lending` commands."""

from datetime import timedelta

from sqlalchemy import func, select, text

from bench.lending import village_row, write_village_file
from lending import village_file
from lending.__main__ import main
from lending.customers import by_id_number, spouse_of
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, CreditLine, Customer, FamilyMember, LoanApplication, utcnow
from sunshine.protect import mask_id_number
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import import_village, person_id, report, service

REFUSED = "village_file.row_refused"


def table_counts(s):
    return tuple(
        s.scalar(select(func.count()).select_from(t)) for t in (Customer, FamilyMember, CreditLine, AuditEntry)
    )


def test_batches_give_the_same_result_as_row_by_row(db_url, tmp_path, monkeypatch):
    """Batch boundaries, a household met twice and a member who heads a household of her own."""
    monkeypatch.setattr(village_file, "BATCH_SIZE", 2)
    head, spouse, daughter = person_id("19700101", seq=1), person_id("19720202", seq=2), person_id("19950303", seq=3)
    rows = [
        f"柳树村,甲,{head},13800000001,farmer,50000,2027-12-31,spouse:乙:{spouse}:;child:丙:{daughter}:,income_band=5-10万",
        "柳树村,坏,110105194912310021,13800000009,farmer,50000,2027-12-31,,",
        f"柳树村,丙,{daughter},13800000003,merchant,30000,2027-12-31,,",
        # the same household again
        f"柳树村,甲,{head},13800000011,farmer,70000,2028-12-31,spouse:乙:{spouse}:,income_band=10-20万",
    ]
    with unit_of_work(db_url) as s:
        result = import_village(s, tmp_path, rows)
    assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
    assert result.errors == [(3, "身份证号校验位不对，请核对后重新输入")]
    with unit_of_work(db_url) as s:
        first = by_id_number(s, TEST_SECRET, head)
        assert (first.phone_masked, spouse_of(s, first).name) == ("138****0011", "乙")
        assert s.scalar(select(CreditLine.amount).where(CreditLine.customer_id == first.id)) == 70_000
        raised = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit_line.raised"))
        assert (raised.subject_id, raised.detail) == (str(first.id), {"old": 50_000, "new": 70_000, "line_no": 5})
        assert by_id_number(s, TEST_SECRET, daughter).customer_type == "merchant"  # her own row came later
        before = table_counts(s)
    with unit_of_work(db_url) as s:  # the same file again changes nothing
        again = import_village(s, tmp_path, rows)
    # Row 2 lowers 甲's line to 5万 and row 5 raises it to 7万 again, as row by row: the same end state.
    assert (again.created, again.updated, again.unchanged) == (0, 2, 1)
    with unit_of_work(db_url) as s:
        assert table_counts(s)[:3] == before[:3]
        lowered_then_raised = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("credit_line.%")).order_by(AuditEntry.id)
        ).all()[-2:]
        assert lowered_then_raised == ["credit_line.lowered", "credit_line.raised"]


def test_a_line_lowered_in_a_new_file_is_audited_and_an_unchanged_file_is_not(db_url, tmp_path):
    row = f"柳树村,甲,{person_id('19700101')},13800000001,farmer,{{}},2027-12-31,,"
    for amount, created, updated in ((80_000, 1, 0), (80_000, 0, 0), (60_000, 0, 1)):
        with unit_of_work(db_url) as s:
            result = import_village(s, tmp_path, [row.format(amount)])
        assert (result.created, result.updated) == (created, updated)
    with unit_of_work(db_url) as s:
        assert s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == [
            "credit_line.granted",
            "credit_line.lowered",
        ]


def test_bad_rows_say_why_and_never_show_an_id_number(db_url, tmp_path):
    good = person_id("19700101")
    rows = [
        f"柳树村,{'长' * 65},{good},13800000001,farmer,50000,2027-12-31,,",
        f"柳树村,甲,{good},13800000001,farmer,50000,2027-12-31,{good}:乙:{good}:,",
        f"柳树村,甲,{good},13800000001,farmer,50000,2027-12-31,spouse:乙:{good}:,",
        f"柳树村,甲,{good},1380000,farmer,50000,2027-12-31,,",
        f"柳树村,甲,{good},13800000001,farmer,-5,2027-12-31,,",
        f"柳树村,甲,{good},13800000001,farmer,50000,2027-13-31,,",
    ]
    with unit_of_work(db_url) as s:
        result = import_village(s, tmp_path, rows)
        assert table_counts(s) == (0, 0, 0, 6)  # nothing but the refusals, recorded
        refused = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.action, e.subject_id) for e in refused] == [(REFUSED, str(n)) for n in range(2, 8)]
        assert good not in str([e.detail for e in refused])
    reasons = dict(result.errors)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "超过64个字" in reasons[2] and "格式应为" in reasons[3] and "与户主相同" in reasons[4]
    assert "不是11位手机号" in reasons[5] and "超出范围" in reasons[6] and "YYYY-MM-DD" in reasons[7]
    assert good not in " ".join(reasons.values()) and good[:4] + "**********" + good[-4:] in reasons[3]


def test_the_id_number_is_stored_only_sealed_fingerprinted_and_masked(db_url, tmp_path):
    id_number = person_id("19700101")
    with unit_of_work(db_url) as s:
        import_village(s, tmp_path, [f"柳树村,甲,{id_number},13800000001,farmer,50000,2027-12-31,,"])
    with unit_of_work(db_url) as s:
        dump = " ".join(
            str(v)
            for table in ("customers", "credit_lines", "audit_log")
            for row in s.execute(text(f"SELECT * FROM {table}"))  # noqa: S608  fixed table names
            for v in row
        )
    assert id_number not in dump and "13800000001" not in dump
    assert mask_id_number(id_number) in dump and "138****0001" in dump  # the dump does hold the customer


def test_cli_imports_with_a_summary(settings, tmp_path, capsys):
    path = write_village_file(tmp_path / "village.csv", 30)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("柳树村,坏,110105194912310021,13800000009,farmer,50000,2027-12-31,,\n")
    assert main(["import-credit-lines", str(path)], settings=settings) == 1
    out = capsys.readouterr()
    assert "导入完成：新增30户，更新0户，未变0户，有误1行。" in out.out and "第32行：身份证号校验位不对" in out.out
    assert "导入授信档案" in out.err  # the progress bar
    assert main(["import-credit-lines", str(tmp_path / "missing.csv")], settings=settings) == 2
    assert "找不到文件" in capsys.readouterr().err
    header_only = tmp_path / "wrong.csv"
    header_only.write_text("village,name\n", encoding="utf-8")
    assert main(["import-credit-lines", str(header_only)], settings=settings) == 2
    assert "文件缺少列" in capsys.readouterr().err


def test_cli_approves_a_village_and_escalates_overdue(demo_settings, capsys):
    svc, _ = service(clock=lambda: utcnow() - timedelta(days=2))
    with unit_of_work(demo_settings.database_url) as s:
        zhang = by_id_number(s, TEST_SECRET, "321283197503120119")
        small = svc.apply(s, zhang.id, "sunshine_e_loan", 30_000, 12, idempotency_key="a")
        guaranteed = svc.apply(
            s,
            zhang.id,
            "guaranteed_farm_loan",
            60_000,
            12,
            idempotency_key="b",
            guarantor_id=by_id_number(s, TEST_SECRET, "32128319820820033X").id,
        )
        reports = {"applicant": report("321283197503120119"), "spouse": report("321283197706050229")}
        svc.report_arrived(s, guaranteed.id, {**reports, "guarantor": report("32128319820820033X")})
        small_id, guaranteed_id = small.id, guaranteed.id
    assert main(["escalate-overdue"], settings=demo_settings) == 0
    assert f"已升级的申请：1笔（编号 {guaranteed_id}）" in capsys.readouterr().out
    assert main(["approve-village", "黄桥村", "--officer", "nobody"], settings=demo_settings) == 2
    assert "没有这个客户经理账号" in capsys.readouterr().err
    assert (
        main(["approve-village", "黄桥村", "--officer", "officer01", "--max-amount", "100000"], settings=demo_settings)
        == 0
    )
    assert "黄桥村批量审批完成：通过1笔，超过小额上限或需主管复核、留待逐笔审批0笔。" in capsys.readouterr().out
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(LoanApplication, guaranteed_id).status == "approved"
        assert s.get(LoanApplication, small_id).status == "awaiting_authorization"


def test_generated_bench_households_are_valid_and_distinct():
    rows = [village_row(n) for n in (0, 1, 89_999, 90_000, 99_999)]
    parsed = [village_file.parse_row(n, row) for n, row in enumerate(rows)]
    ids = {p.head.id_number for p in parsed} | {p.members[0][1].id_number for p in parsed}
    assert len(ids) == 10 and all(i[15] in "012345" for i in ids)  # clean reports at the bureau emulator
