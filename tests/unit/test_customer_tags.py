"""Customer tags as data (the catalogue, the village file, officers), products offered and rules
run by tag, the hand-off summary, the credit line's history, and the data migration of the old
free tags."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from handoff import service as handoffs
from lending import tags as t
from lending.catalog import PRODUCTS_FILE, ProductFileError, products_offered, read_products
from lending.credit_lines import change_line, line_history, valid_line
from lending.customers import by_id_number
from lending.data_files import data_file_problems
from lending.risk import RuleBook, RuleFileError
from sunshine.db import make_engine, unit_of_work
from sunshine.migrate import alembic_config
from sunshine.models import AuditEntry, CreditLineChange, CustomerTag
from tests.conftest import TEST_SECRET, fresh_database
from tests.unit.lending_helpers import import_village, person_id, service

ZHANG = "321283197503120119"  # 张建国, a farmer of the demo village: 水稻种植, 10-20万, 农机, 手机银行


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_catalogue_in_the_repository_is_right_and_names_its_kinds():
    assert data_file_problems() == []
    cat = t.catalogue()
    assert cat.kinds["occupation"].label == "职业" and "水稻种植" in cat.kinds["occupation"].values
    assert cat.kinds["assets"].multiple and not cat.kinds["income_band"].multiple
    assert set(cat.kinds) >= {"occupation", "income_band", "assets", "products_held", "organisation", "family_role"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("occupation: [a]", "kind occupation: only label, values and multiple"),
        ("occupation: {label: 职业}", "kind occupation: needs a list of values"),
        ("occupation: {values: [a]}", "kind occupation: needs a label"),
        ("occupation: {label: 职业, values: [a, a]}", "kind occupation: values repeat"),
        ("occupation: {label: 职业, values: ['a=b']}", "without ; or ="),
        ("职 业: {label: 职业, values: [a]}", "must be a short identifier"),
        ("occupation: {label: 职业, values: [a], multiple: 是}", "multiple must be true or false"),
        ("[", "cannot be read"),
    ],
)
def test_a_bad_catalogue_is_refused_saying_what_is_wrong(tmp_path, text, message):
    with pytest.raises(t.TagFileError, match=message):
        t.read_catalogue(write(tmp_path, "tags.yml", text))


def test_a_bad_catalogue_stops_the_start_with_its_reason(tmp_path, monkeypatch, capsys):
    from sunshine import launcher

    monkeypatch.setattr("lending.data_files.TAGS_FILE", write(tmp_path, "tags.yml", "occupation: {label: 职业}"))
    assert launcher.main(["check"]) == 2
    assert "error: lending/tags.yml: kind occupation: needs a list of values" in capsys.readouterr().err


def test_products_and_rules_may_name_only_tags_of_the_catalogue(tmp_path):
    products = PRODUCTS_FILE.read_text(encoding="utf-8").replace("个体工商户, 小微企业主", "个体工商户, 开矿")
    with pytest.raises(
        ProductFileError, match="merchant_e_loan: offered_to_tags: tag business=开矿 is not in tags.yml"
    ):
        read_products(write(tmp_path, "products.yml", products))
    rules = (
        "- {code: R10, check: tagged, outcome: review, params: {tags: {occupation: [挖矿]}}, description: '{tag}'}\n"
    )
    with pytest.raises(RuleFileError, match="rule R10: params.tags: tag occupation=挖矿 is not in tags.yml"):
        RuleBook.load(write(tmp_path, "rules.yml", rules))


def test_the_village_file_brings_tags_and_refuses_a_row_with_a_tag_outside_the_catalogue(db_url, tmp_path):
    good, bad, third, fourth = (person_id(f"197{n}0101", seq=n + 1) for n in range(4))
    rows = [
        f"柳树村,甲,{good},13800000001,farmer,50000,2027-12-31,,occupation=水稻种植;assets=农机;assets=大棚",
        f"柳树村,乙,{bad},13800000002,farmer,50000,2027-12-31,,occupation=挖矿",
        f"柳树村,丙,{third},13800000003,farmer,5000,2027-12-31,,income_band=5-10万;income_band=5万以下",
        f"柳树村,丁,{fourth},13800000004,farmer,50000,2027-12-31,,职业水稻",
    ]
    with unit_of_work(db_url) as s:
        result = import_village(s, tmp_path, rows)
    assert result.created == 1
    reasons = dict(result.errors)
    assert reasons[3].startswith("标签“职业”没有“挖矿”这个值，可选：水稻种植、")
    assert reasons[4] == "标签“年收入”只能有一个值" and reasons[5] == "标签 '职业水稻' 应为 类别=值"
    with unit_of_work(db_url) as s:
        head = by_id_number(s, TEST_SECRET, good)
        assert [(x.kind, x.value, x.source, x.set_by) for x in t.tags_of(s, head.id)] == [
            ("occupation", "水稻种植", "village_file", "import"),
            ("assets", "农机", "village_file", "import"),
            ("assets", "大棚", "village_file", "import"),
        ]
        assert by_id_number(s, TEST_SECRET, bad) is None  # the refused row changed nothing
        refused = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "village_file.row_refused").order_by(AuditEntry.id)
        ).all()
        assert [e.subject_id for e in refused] == ["3", "4", "5"]
    with unit_of_work(db_url) as s:  # the same file again changes nothing
        again = import_village(s, tmp_path, rows[:1])
        assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


def test_the_file_replaces_its_own_tags_and_leaves_the_officers(db_url, tmp_path):
    head = person_id("19700101")
    row = f"柳树村,甲,{head},13800000001,farmer,50000,2027-12-31,,{{}}"
    with unit_of_work(db_url) as s:
        import_village(s, tmp_path, [row.format("occupation=水稻种植;assets=农机")])
        cid = by_id_number(s, TEST_SECRET, head).id
        t.set_tag(s, cid, "occupation", "生猪养殖", "officer:officer01")  # replaces the file's one value
        t.set_tag(s, cid, "products_held", "信用卡", "officer:officer01")
    with unit_of_work(db_url) as s:
        result = import_village(s, tmp_path, [row.format("occupation=蔬菜大棚;assets=大棚")])
        assert (result.updated, result.unchanged) == (1, 0)
        assert {(x.kind, x.value, x.source) for x in t.tags_of(s, cid)} == {
            ("occupation", "生猪养殖", "officer"),  # the officer's value of a one-value kind stands
            ("products_held", "信用卡", "officer"),
            ("assets", "大棚", "village_file"),
        }


def test_an_officer_sets_and_removes_tags_in_the_audit_log_and_a_bad_tag_changes_nothing(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        cid = by_id_number(s, TEST_SECRET, ZHANG).id
        before = [(x.kind, x.value) for x in t.tags_of(s, cid)]
        assert before == [
            ("occupation", "水稻种植"),
            ("income_band", "10-20万"),
            ("assets", "农机"),
            ("products_held", "手机银行"),
        ]
        t.set_tag(s, cid, "income_band", "20-50万", "officer:officer01")
        t.set_tag(s, cid, "assets", "货车", "officer:officer01")
        assert t.remove_tag(s, cid, "products_held", "手机银行", "officer:officer01")
        assert not t.remove_tag(s, cid, "products_held", "手机银行", "officer:officer01")
        with pytest.raises(t.TagRefused, match="标签“资产”没有“飞机”这个值"):
            t.set_tag(s, cid, "assets", "飞机", "officer:officer01")
        with pytest.raises(t.TagRefused, match="没有“hobby”这类标签"):
            t.set_tag(s, cid, "hobby", "钓鱼", "officer:officer01")
    with unit_of_work(demo_db_url) as s:
        assert t.labelled(s, cid) == ["职业：水稻种植", "年收入：20-50万", "资产：农机", "资产：货车"]
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("customer_tag.%")).order_by(AuditEntry.id)
        ).all()
        assert actions == ["customer_tag.removed", "customer_tag.set", "customer_tag.set", "customer_tag.removed"]


def test_a_product_is_offered_by_tag_and_the_application_follows_it(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        farmer = by_id_number(s, TEST_SECRET, ZHANG)
        assert "商e贷" not in [p.name for p in products_offered(s, farmer)]
        t.set_tag(s, farmer.id, "business", "个体工商户", "officer:officer01")
    with unit_of_work(demo_db_url) as s:
        farmer = by_id_number(s, TEST_SECRET, ZHANG)
        assert [p.name for p in products_offered(s, farmer)] == ["阳光e贷", "商e贷", "富农担保贷"]
        application = svc.apply(s, farmer.id, "merchant_e_loan", 50_000, 12, idempotency_key="k", purpose="进货")
        assert (application.product_code, application.status) == ("merchant_e_loan", "awaiting_authorization")


def test_a_rule_reads_the_applicants_tags(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        farmer = by_id_number(s, TEST_SECRET, ZHANG)
        t.set_tag(s, farmer.id, "occupation", "外出务工", "officer:officer01")
        application = svc.apply(s, farmer.id, "sunshine_e_loan", 30_000, 12, idempotency_key="k", purpose="买化肥")
        hits = {h["code"]: h["description"] for h in application.risk_hits}
    assert hits["R10"] == "申请人的标签是“职业：外出务工”，请核实在本地的经营和还款来源"


def test_the_hand_off_summary_carries_the_customers_tags(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        hand_off, _ = handoffs.request_hand_off(s, "o_demo_zhangjianguo", "customer_request", {"last_intent": "x"})
        assert hand_off.summary["tags"] == ["职业：水稻种植", "年收入：10-20万", "资产：农机", "已有产品：手机银行"]
        assert hand_off.summary["last_intent"] == "x"


def test_every_change_of_a_line_is_in_its_history(db_url, tmp_path):
    head = person_id("19700101")
    row = f"柳树村,甲,{head},13800000001,farmer,{{}},2027-12-31,,"
    for amount in (50_000, 50_000, 80_000):
        with unit_of_work(db_url) as s:
            import_village(s, tmp_path, [row.format(amount)])
    with unit_of_work(db_url) as s:
        cid = by_id_number(s, TEST_SECRET, head).id
        line = valid_line(s, cid, date(2026, 12, 1))
        assert change_line(s, line, 60_000, date(2028, 12, 31), "inspection", "officer:officer01", "年检减退")
        assert not change_line(s, line, 60_000, date(2028, 12, 31), "inspection", "officer:officer01")
    with unit_of_work(db_url) as s:
        history = [(c.old_amount, c.new_amount, c.source, c.reason) for c in line_history(s, cid)]
        assert history == [
            (80_000, 60_000, "inspection", "年检减退"),
            (50_000, 80_000, "village_file", "第2行"),
            (None, 50_000, "village_file", "第2行"),
        ]
        assert s.scalar(select(sa.func.count()).select_from(CreditLineChange)) == 3


def test_the_migration_moves_the_free_tags_to_the_customers_and_starts_each_lines_history(tmp_path):
    with fresh_database(tmp_path) as url:
        cfg = alembic_config(url)
        command.upgrade(cfg, "0022")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO customers (id, name, id_fingerprint, id_sealed, id_masked, phone_masked,"
                        " customer_type, created_at) VALUES (1, '张 建国', 'fp', 'sealed', '3212**********0119',"
                        " '139****0001', 'farmer', '2026-01-01 00:00:00')"
                    )
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO credit_lines (id, customer_id, amount, used_amount, valid_until, source, tags,"
                        " updated_at)"
                        " VALUES (7, 1, 200000, 0, '2027-12-31', 'whole_village', :tags, '2026-01-01 00:00:00')"
                    ),
                    {"tags": '{"occupation": "水稻种植", "assets": "农机2台"}'},
                )
            command.upgrade(cfg, "0024")
            with engine.connect() as conn:
                tags = conn.execute(
                    sa.text("SELECT kind, value, source, set_by FROM customer_tags ORDER BY kind")
                ).all()
                assert [tuple(r) for r in tags] == [
                    ("assets", "农机2台", "village_file", "migration"),
                    ("occupation", "水稻种植", "village_file", "migration"),
                ]
                keys = conn.execute(sa.text("SELECT name_norm, id_last4, phone_last4 FROM customers")).one()
                assert tuple(keys) == ("张建国", "0119", "0001")
                change = conn.execute(
                    sa.text("SELECT credit_line_id, old_amount, new_amount, source FROM credit_line_changes")
                ).one()
                assert tuple(change) == (7, None, 200000, "migration")
                assert "tags" not in [c["name"] for c in sa.inspect(conn).get_columns("credit_lines")]
            command.downgrade(cfg, "0022")  # and back: the tags on the line again
            with engine.connect() as conn:
                back = conn.execute(sa.text("SELECT tags FROM credit_lines")).scalar_one()
                assert (back if isinstance(back, dict) else json.loads(back)) == {
                    "occupation": "水稻种植",
                    "assets": "农机2台",
                }
        finally:
            engine.dispose()


def test_customer_tags_are_unique_per_customer_kind_and_value(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        cid = by_id_number(s, TEST_SECRET, ZHANG).id
        first = t.set_tag(s, cid, "assets", "货车", "officer:officer01")
        assert t.set_tag(s, cid, "assets", "货车", "officer:officer02") is first  # already there: unchanged
        assert s.scalar(select(sa.func.count()).select_from(CustomerTag).where(CustomerTag.value == "货车")) == 1
