"""The annual inspection (lending.inspection): the rules file, judging a household by its income
band, a batch over the demo village with the core-banking emulator (kept, raised and lowered
off-site by a band's move, sent on site, the core failing), and the officer's on-site task
(saved, submitted and locked, a second submit or an edit refused, another officer refused)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest
import yaml
from PIL import Image
from sqlalchemy import select

from handoff.workbench import WorkDay, inspections_due
from lending import inspection
from lending.__main__ import main
from lending.customers import by_id_number
from lending.inspection import Facts, InspectionError, InspectionRulesError, Photo, Rules, judge
from lending.repayment import add_months
from lending.risk import watch
from lending.tags import catalogue, write_village_tags
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, CreditLine, Customer, InspectionBatch, LineInspection, Officer
from tests import TEST_SECRET
from tests.unit.lending_helpers import Recorder
from tests.unit.loan_helpers import core_today, paid_out
from tests.unit.test_lending_applications import ZHANG_ID

RULES = Rules.load()
CHEN_ID = "321283196802010556"  # 陈立新, no WeChat
WANG_ID = "32128319820820033X"  # 王春华, WeChat o_demo_wangchunhua
ZHAO_ID = "321283199007180779"  # 赵小军, WeChat o_demo_zhaoxiaojun
QIAN_ID = "321283198604251024"  # 钱玉梅, WeChat o_demo_qianyumei


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(out, "JPEG")
    return out.getvalue()


# --- the rules file ----------------------------------------------------------------------------


def rules_data() -> dict:
    return yaml.safe_load(inspection.RULES_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["income"].pop("max_band_steps_offsite"), "income.max_band_steps_offsite is missing"),
        (
            lambda d: d["adjust"].update(raise_per_band_pct=150),
            "adjust.raise_per_band_pct must be between 0 and 100, not 150",
        ),
        (
            lambda d: d["income"].update(max_band_steps_offsite=5),
            "income.max_band_steps_offsite must be between 0 and 4, not 5",
        ),
        (lambda d: d.update(income={"tags": ["income_band"], "max_change_pct": 30}), "income.tag is missing"),
        (lambda d: d["income"].update(tag="income"), "income.tag must name a one-value kind of tags.yml"),
        (lambda d: d["income"].update(tag="assets"), "income.tag must name a one-value kind of tags.yml"),
        (lambda d: d["due"].update(window_days="30"), "due.window_days must be a whole number"),
        (lambda d: d["negative"].update(watch_list="yes"), "negative.watch_list must be true or false"),
        (lambda d: d["negative"].update(tags={"status": "停业"}), "negative.tags must map a tag name to a list"),
        (lambda d: d["negative"].update(tags={"status": ["停业"]}), "tag status=停业 is not in tags.yml"),
        (
            lambda d: d["income"].update(max_band_steps_offsite=2) or d["adjust"].update(lower_per_band_pct=50),
            "adjust.lower_per_band_pct times income.max_band_steps_offsite must stay below 100",
        ),
    ],
)
def test_a_bad_rules_file_is_refused_naming_what_is_wrong(change, message):
    data = rules_data()
    change(data)
    with pytest.raises(InspectionRulesError, match=message):
        Rules.parse(data)


def test_the_command_refuses_to_start_with_a_bad_rules_file(demo_settings, tmp_path, capsys):
    bad = tmp_path / "rules.yml"
    bad.write_text("due: {window_days: -1}\n", encoding="utf-8")
    assert main(["annual-inspection", "--rules", str(bad)], settings=demo_settings) == 2
    assert "年检规则文件有误" in capsys.readouterr().err
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(InspectionBatch.id)) is None


def test_the_bands_are_the_catalogues_in_its_order():
    assert RULES.income_bands == catalogue().kinds["income_band"].values
    assert RULES.band({"income_band": RULES.income_bands[0]}) == 0
    assert RULES.band({"income_band": RULES.income_bands[-1]}) == len(RULES.income_bands) - 1
    for tags in ({"income_band": "180000"}, {"income": "10-20万"}, {"occupation": "水稻种植"}):
        assert RULES.band(tags) is None


# --- judging one household -----------------------------------------------------------------------

LAST_YEAR = {"amount": 100_000, "tags": {"income_band": "10-20万"}, "report_overdue_records": 0}


def this_year(band: str | None = "10-20万", **kwargs) -> Facts:
    """This year's facts: the income band (None: no band tag) and anything else."""
    return Facts(tags={"income_band": band} if band else {"occupation": "水稻种植"}, **kwargs)


@pytest.mark.parametrize(
    "band, outcome, amount, text",
    [
        ("10-20万", "kept", 100_000, "年收入仍为10-20万，无逾期和负面信息，额度维持100,000元"),
        (
            "20-50万",
            "raised",
            110_000,
            "年收入由10-20万升至20-50万（1档），无逾期和负面信息，额度按每档10%由100,000元上调为110,000元",
        ),
        (
            "5-10万",
            "lowered",
            80_000,
            "年收入由10-20万降至5-10万（1档），无逾期和负面信息，额度按每档20%由100,000元下调为80,000元",
        ),
    ],
)
def test_a_band_kept_or_moved_one_step_passes_off_site_adjusted_per_band(band, outcome, amount, text):
    got = judge(RULES, 100_000, LAST_YEAR, this_year(band))
    assert (got.mode, got.outcome, got.new_amount, got.reasons) == (
        "off_site",
        outcome,
        amount,
        [{"code": "passed", "text": text}],
    )


@pytest.mark.parametrize("band, outcome, amount", [("50万以上", "raised", 120_000), ("5万以下", "lowered", 60_000)])
def test_the_adjustment_is_per_band_step_when_the_rules_allow_more_steps(band, outcome, amount):
    got = judge(replace(RULES, max_band_steps_offsite=2), 100_000, LAST_YEAR, this_year(band))
    assert (got.mode, got.outcome, got.new_amount, got.band_steps) == (
        "off_site",
        outcome,
        amount,
        2 if outcome == "raised" else -2,
    )


def test_the_line_is_rounded_and_never_above_the_ceiling():
    assert judge(RULES, 123_456, LAST_YEAR, this_year("20-50万")).new_amount == 135_000
    assert judge(RULES, 123_456, LAST_YEAR, this_year("5-10万")).new_amount == 98_000
    assert judge(RULES, 123_456, LAST_YEAR, this_year()).new_amount == 123_456  # kept as it is
    assert judge(RULES, 490_000, LAST_YEAR, this_year("20-50万")).new_amount == 500_000
    at_ceiling = judge(RULES, 600_000, LAST_YEAR, this_year("20-50万"))
    assert (at_ceiling.outcome, at_ceiling.new_amount) == ("kept", 600_000)
    assert "额度已到上限，维持600,000元" in at_ceiling.reasons[0]["text"]


@pytest.mark.parametrize(
    "baseline, facts, code, text",
    [
        (LAST_YEAR, this_year("50万以上"), "income_changed", "年收入由10-20万变为50万以上，跨2档，需上门核查"),
        (LAST_YEAR, this_year("5万以下"), "income_changed", "年收入由10-20万变为5万以下，跨2档，需上门核查"),
        (LAST_YEAR, this_year(None), "income_unknown", "今年的年收入档次不明，无法比较，需上门核查"),
        (LAST_YEAR, this_year("180000"), "income_unknown", "今年的年收入档次不明，无法比较，需上门核查"),
        ({"tags": {"income": "100000"}}, this_year(), "income_unknown", "去年的年收入档次不明，无法比较，需上门核查"),
        ({}, this_year(None), "income_unknown", "去年和今年的年收入档次不明，无法比较，需上门核查"),
        (LAST_YEAR, this_year(overdue_instalments=1), "overdue", "核心系统显示有1期贷款逾期未还"),
        (
            LAST_YEAR,
            this_year(report_current_overdue=True, report_overdue_records=1),
            "report_current_overdue",
            "征信报告显示当前有逾期",
        ),
        (
            LAST_YEAR,
            this_year(report_current_overdue=False, report_overdue_records=2),
            "report_new_overdue",
            "征信报告比去年新增2条逾期记录",
        ),
        (LAST_YEAR, this_year(watch_reason="涉嫌骗贷"), "watch_list", "户主在关注名单上：涉嫌骗贷"),
        (
            LAST_YEAR,
            Facts(tags={"income_band": "10-20万", "family_role": "外出务工人员"}),
            "negative_tag",
            "标签“family_role=外出务工人员”需要上门核实",
        ),
    ],
)
def test_too_many_steps_an_unknown_band_or_anything_negative_sends_the_household_on_site(baseline, facts, code, text):
    got = judge(RULES, 100_000, baseline, facts)
    assert (got.mode, got.outcome, got.new_amount) == ("on_site", None, 100_000)
    assert {"code": code, "text": text} in got.reasons


def test_overdue_records_already_there_last_year_are_not_new():
    last_year = {**LAST_YEAR, "report_overdue_records": 2}
    assert judge(RULES, 100_000, last_year, this_year(report_current_overdue=False, report_overdue_records=2)).mode == (
        "off_site"
    )


# --- a batch -----------------------------------------------------------------------------------


class Officers:
    """A tell_officer that keeps what officers were told."""

    def __init__(self):
        self.told: list[tuple[int | None, str]] = []

    def __call__(self, session, officer_id, text):
        self.told.append((officer_id, text))


def make_due(db_url, id_number: str, tags: dict, days: int = 10) -> int:
    """The household's line ending in `days` days with `tags` as this year's village file says; its id."""
    with unit_of_work(db_url) as s:
        customer_id = by_id_number(s, TEST_SECRET, id_number).id
        write_village_tags(s, {customer_id: list(tags.items())}, "test")
        line = s.scalar(select(CreditLine).where(CreditLine.customer_id == customer_id))
        line.valid_until = clock.today() + timedelta(days=days)
        return line.id


def run(settings, core=None, **kwargs):
    told, officers = Recorder(), Officers()
    core = core or inspection.CoreBankingClient(settings.core_banking_url, "x", "x", timeout=1)
    report = inspection.run_batch(settings, told, RULES, core=core, tell_officer=officers, **kwargs)
    return report, told, officers


def test_a_batch_keeps_raises_lowers_and_sends_on_site_once(demo_settings):
    db = demo_settings.database_url
    # Last year's bands are the demo village file's: 张建国 10-20万, 王春华 5-10万, 钱玉梅 10-20万, 赵小军 20-50万.
    zhang = make_due(db, ZHANG_ID, {"occupation": "水稻种植", "income_band": "10-20万", "assets": "农机"})
    wang = make_due(db, WANG_ID, {"occupation": "生猪养殖", "income_band": "10-20万"})
    qian = make_due(db, QIAN_ID, {"occupation": "医护", "income_band": "5-10万"})
    zhao = make_due(db, ZHAO_ID, {"occupation": "农资店", "income_band": "5-10万"})
    chen = make_due(db, CHEN_ID, {"occupation": "蔬菜大棚", "income_band": "10-20万"})
    with unit_of_work(db) as s:
        watch(s, TEST_SECRET, CHEN_ID, "村委反映外出", "officer01")
    today = clock.today()
    report, told, officers = run(demo_settings, village="黄桥村")
    assert (report.total, dict(report.counts)) == (5, {"kept": 1, "raised": 1, "lowered": 1, "on_site": 2})
    renewed = add_months(today + timedelta(days=10), 12)
    with unit_of_work(db) as s:
        lines = {i: s.get(CreditLine, i) for i in (zhang, wang, qian, zhao, chen)}
        assert [(lines[i].amount, lines[i].valid_until) for i in (zhang, wang, qian)] == [
            (200_000, renewed),
            (88_000, renewed),
            (200_000, renewed),
        ]
        assert lines[wang].baseline["tags"] == {"occupation": "生猪养殖", "income_band": "10-20万"}
        assert lines[wang].baseline["amount"] == 88_000
        for i in (zhao, chen):  # unchanged until the officer has been
            assert lines[i].valid_until == today + timedelta(days=10)
        tasks = {
            t.credit_line_id: t
            for t in s.scalars(
                select(LineInspection).where(LineInspection.mode == "on_site").order_by(LineInspection.id)
            )
        }
        officer01 = s.scalar(select(Officer).where(Officer.username == "officer01"))
        assert (tasks[chen].officer_id, tasks[chen].deadline) == (officer01.id, today + timedelta(days=15))
        assert tasks[chen].reasons == [{"code": "watch_list", "text": "户主在关注名单上：村委反映外出"}]
        assert tasks[zhao].reasons == [
            {"code": "income_changed", "text": "年收入由20-50万变为5-10万，跨2档，需上门核查"}
        ]
        assert [
            (d.inspection.id, d.days_left, d.overdue) for d in inspection.due_for_officer(s, officer01.id, today)
        ] == [(tasks[chen].id, 15, False), (tasks[zhao].id, 15, False)]
        late = inspection.due_for_officer(s, officer01.id, today + timedelta(days=16))
        assert (late[0].days_left, late[0].overdue) == (-1, True)
        batch = s.get(InspectionBatch, report.batch_id)
        assert (batch.status, batch.total, batch.done, batch.kept, batch.raised, batch.lowered, batch.on_site) == (
            "done",
            5,
            5,
            1,
            1,
            1,
            2,
        )
        assert inspection.batch_summary(s, batch.id)["passed"] == 3
        raised = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit_line.raised"))
        assert raised.detail == {"old": 80_000, "new": 88_000, "by": "annual_inspection"}
    assert [openid for openid, _ in told.sent] == ["o_demo_zhangjianguo", "o_demo_wangchunhua", "o_demo_qianyumei"]
    assert "额度200,000元保持不变" in told.sent[0][1]
    assert "额度由80,000元上调为88,000元" in told.sent[1][1]
    assert "额度由250,000元调整为200,000元" in told.sent[2][1]
    assert told.details[0]["kind"] == "credit_line_inspection"
    assert officers.told == [(officer01.id, officers.told[0][1])] and "2户需要上门核查" in officers.told[0][1]
    again, told, _ = run(demo_settings, village="黄桥村")
    assert (again.total, told.sent) == (0, [])


def test_a_notice_goes_only_once_the_batch_chunk_is_committed(demo_settings, monkeypatch):
    make_due(demo_settings.database_url, ZHANG_ID, {"income_band": "10-20万"})
    monkeypatch.setattr(inspection, "_tell_officers", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    told = Recorder()
    core = inspection.CoreBankingClient(demo_settings.core_banking_url, "x", "x", timeout=1)
    with pytest.raises(RuntimeError):
        inspection.run_batch(demo_settings, told, RULES, core=core)
    assert len(told.sent) == 1  # the chunk committed before the failure: its notice went
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(InspectionBatch.status)) == "failed"


def test_an_instalment_overdue_at_the_core_sends_the_household_on_site(demo_settings, core):
    settings, svc, _, url, _ = core
    paid_out(settings, svc)
    late = add_months(clock.today(), 1) + timedelta(days=3)
    core_today(url, late)
    line_id = make_due(settings.database_url, ZHANG_ID, {"income_band": "10-20万"})
    report, told, _ = run(settings, core=svc.core_banking, today=late - timedelta(days=20))
    assert dict(report.counts) == {"on_site": 1} and told.sent == []
    with unit_of_work(settings.database_url) as s:
        task = s.scalar(select(LineInspection).where(LineInspection.credit_line_id == line_id))
        assert task.reasons[0]["code"] == "overdue" and "1期贷款逾期" in task.reasons[0]["text"]


def test_a_household_the_core_cannot_answer_for_waits_for_the_next_run(demo_settings, core):
    settings, svc, _, url, _ = core
    paid_out(settings, svc)
    make_due(settings.database_url, ZHANG_ID, {"income_band": "10-20万"})
    dead = inspection.CoreBankingClient(demo_settings.core_banking_url, "x", "x", timeout=1)  # a closed port
    report, told, _ = run(settings, core=dead)
    assert (dict(report.counts), told.sent) == ({"failed": 1}, [])
    with unit_of_work(settings.database_url) as s:
        assert s.scalar(select(LineInspection.id)) is None
    report, told, _ = run(settings, core=svc.core_banking)
    assert dict(report.counts) == {"kept": 1} and len(told.sent) == 1


# --- the officer's on-site task ------------------------------------------------------------------


@pytest.fixture
def task(demo_settings) -> int:
    """陈立新's on-site inspection (he is on the watch list), for officer01."""
    make_due(demo_settings.database_url, CHEN_ID, {"income_band": "10-20万"})
    with unit_of_work(demo_settings.database_url) as s:
        watch(s, TEST_SECRET, CHEN_ID, "村委反映外出", "officer01")
    run(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        return s.scalar(select(LineInspection.id).where(LineInspection.mode == "on_site"))


def officer(s, username="officer01") -> Officer:
    return s.scalar(select(Officer).where(Officer.username == username))


def test_an_on_site_inspection_is_saved_then_submitted_and_locked(demo_settings, task):
    db, photo = demo_settings.database_url, jpeg()
    with unit_of_work(db) as s:
        inspection.save(s, task, officer(s), "大棚在用，", None, None, [Photo(photo, "a.jpg")])
    with unit_of_work(db) as s:
        done = inspection.submit(s, task, officer(s), "大棚在用，已回村经营", "lower", 120_000, [], rules=RULES)
        line = s.get(CreditLine, done.credit_line_id)
        assert (done.outcome, done.new_amount, line.amount) == ("lowered", 120_000, 120_000)
        assert line.valid_until == add_months(clock.today() + timedelta(days=10), 12)
        assert [(p.content_type, p.sha256) for p in done.photos] == [
            ("image/jpeg", inspection.hashlib.sha256(photo).hexdigest())
        ]
        assert inspection.status_of(s, done.customer_id, clock.today(), RULES) == "已通过（客户经理上门年检，额度调减）"
        assert inspection.due_for_officer(s, officer(s).id, clock.today()) == []


def test_a_second_submit_or_an_edit_after_locking_is_refused_and_recorded(demo_settings, task):
    db = demo_settings.database_url
    with unit_of_work(db) as s:
        inspection.submit(s, task, officer(s), "一切正常", "pass", None, [Photo(jpeg())], rules=RULES)
    for action in (inspection.submit, inspection.save):
        with unit_of_work(db) as s:
            with pytest.raises(InspectionError, match="已于.*提交并锁定，不能再修改"):
                action(s, task, officer(s), "改一下", "withdraw", None, [Photo(jpeg())])
    with unit_of_work(db) as s:
        locked = s.get(LineInspection, task)
        assert (locked.findings, locked.conclusion, len(locked.photos)) == ("一切正常", "pass", 1)
        refused = s.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "inspection.refused_locked").order_by(AuditEntry.id)
        ).all()
        assert refused == [{"what": "submit"}, {"what": "save"}]


def test_another_officers_task_is_refused_without_the_supervisor_role(demo_settings, task):
    with unit_of_work(demo_settings.database_url) as s:
        s.add(Officer(username="officer02", display_name="王经理", password_hash="x", role="officer"))
    with unit_of_work(demo_settings.database_url) as s:
        with pytest.raises(PermissionError, match="其他客户经理"):
            inspection.save(s, task, officer(s, "officer02"), "看过了", "pass", None)
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(LineInspection, task).findings == ""
        assert inspection.save(s, task, officer(s, "supervisor01"), "主管看过", None, None).findings == "主管看过"


@pytest.mark.parametrize(
    "conclusion, amount, photos, message",
    [
        ("pass", None, [Photo(b"GIF89a...")], "只能上传JPEG或PNG"),
        ("pass", None, [], "请至少上传一张现场照片"),
        ("pass", None, [Photo(b"")], "照片文件是空的"),
        ("lower", 150_000, [Photo(jpeg())], "调减后的额度应大于0、小于原额度150,000元"),
        ("maybe", None, [], "请选择核查结论"),
        (None, None, [], "请选择核查结论"),
    ],
)
def test_a_bad_submission_is_refused_and_changes_nothing(demo_settings, task, conclusion, amount, photos, message):
    with unit_of_work(demo_settings.database_url) as s, pytest.raises(InspectionError, match=message):
        inspection.submit(s, task, officer(s), "看过了", conclusion, amount, photos, rules=RULES)
    with unit_of_work(demo_settings.database_url) as s:
        t = s.get(LineInspection, task)
        assert (t.submitted_at, t.findings, t.photos) == (None, "", [])


def test_withdrawing_ends_the_line(demo_settings, task):
    with unit_of_work(demo_settings.database_url) as s:
        done = inspection.submit(s, task, officer(s), "人已外出失联", "withdraw", None, [Photo(jpeg())], rules=RULES)
        assert s.get(CreditLine, done.credit_line_id).valid_until == clock.today() - timedelta(days=1)
        assert inspection.status_of(s, done.customer_id, clock.today(), RULES) == "客户经理上门年检后额度已收回"


def test_the_status_the_customer_reads(demo_settings, task):
    with unit_of_work(demo_settings.database_url) as s:
        chen = s.get(LineInspection, task)
        deadline = chen.deadline
        assert inspection.status_of(s, chen.customer_id, clock.today(), RULES) == (
            f"待客户经理上门核查（{deadline.year}年{deadline.month}月{deadline.day}日前）"
        )
        zhang = s.scalar(select(Customer).where(Customer.wechat_openid == "o_demo_zhangjianguo"))
        assert inspection.status_of(s, zhang.id, clock.today(), RULES) == "未到年检时间"
        s.scalar(select(CreditLine).where(CreditLine.customer_id == zhang.id)).valid_until = clock.today()
        assert inspection.status_of(s, zhang.id, clock.today(), RULES) == "待年检（到期前银行会自动核查）"


def test_the_command_prints_a_summary(demo_settings, capsys):
    make_due(demo_settings.database_url, ZHANG_ID, {"income_band": "10-20万"})
    assert main(["annual-inspection", "--village", "黄桥村"], settings=demo_settings) == 0
    out = capsys.readouterr().out
    assert "黄桥村年检完成" in out and "到期1户，非现场通过1户（维持1、上调0、调减0）" in out


def test_the_officers_home_page_lists_the_inspections_due(demo_settings, task):
    with unit_of_work(demo_settings.database_url) as s:
        group = inspections_due(s, officer(s), WorkDay(clock.utcnow(), clock.today() + timedelta(days=16)))
        assert (group.kind, group.count, group.overdue) == ("inspections", 1, 1)
        (row,) = group.rows
        assert (row.who, row.what, row.page, row.page_id) == ("陈立新", "年检上门核查，已超期1天", "inspection", task)
