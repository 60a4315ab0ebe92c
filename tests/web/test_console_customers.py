"""The console's customers: the search, a customer's page, tags set and removed by officers
(a tag outside the catalogue refused, recorded, nothing changed), and another officer's
customer refused without the supervisor role."""

from __future__ import annotations

from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from lending.customers import by_id_number
from lending.tags import labelled
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, Customer, Officer
from tests.conftest import TEST_SECRET
from tests.web.test_console_officers import hand_off, login  # noqa: F401  (the fixture)

ZHANG = "321283197503120119"


def zhang_id(settings) -> int:
    with unit_of_work(settings.database_url) as s:
        return by_id_number(s, TEST_SECRET, ZHANG).id


def give_to_another_officer(settings, customer_id: int) -> None:
    with unit_of_work(settings.database_url) as s:
        other = Officer(
            username="officer02",
            display_name="王经理",
            role="officer",
            password_hash=generate_password_hash("sunshine-demo"),
            must_change_password=False,
        )
        s.add(other)
        s.flush()
        s.execute(update(Customer).where(Customer.id == customer_id).values(officer_id=other.id))


def results(client, query: str) -> str:
    """The results table of a search (empty when there is none)."""
    page = client.get("/console/customers", query_string={"q": query}).data.decode()
    return page.split('id="results"', 1)[1].split("</table>", 1)[0] if 'id="results"' in page else ""


def test_the_search_finds_by_name_masked_id_and_phone(login, demo_settings):  # noqa: F811
    officer = login()
    for query in ("张建国", "3212**********0119", "0119", "13912340001"):
        found = results(officer, query)
        assert "张建国" in found and "3212**********0119" in found and "139****0001" in found, query
        assert "321283197503120119" not in found and "13912340001" not in found
    resp = officer.get("/console/customers", query_string={"q": "119"})
    assert resp.status_code == 400 and "号码请至少写出最后4位" in resp.data.decode()
    assert "没有找到符合的客户" in officer.get("/console/customers", query_string={"q": "无此人"}).data.decode()


def test_an_officer_finds_and_opens_only_their_own_customers_a_supervisor_all(login, demo_settings):  # noqa: F811
    cid = zhang_id(demo_settings)
    give_to_another_officer(demo_settings, cid)
    officer = login()
    assert results(officer, "张建国") == ""
    resp = officer.get(f"/console/customers/{cid}")
    assert resp.status_code == 403 and "这是其他客户经理的客户，只有主管可以查看和修改" in resp.data.decode()
    assert resp.headers["Cache-Control"] == "no-store"
    resp = officer.post(f"/console/customers/{cid}/tags", data={"tag": "assets=货车", "csrf": officer.csrf})
    assert resp.status_code == 403
    with unit_of_work(demo_settings.database_url) as s:
        refused = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.access_refused").order_by(AuditEntry.id)
        ).all()
        assert [(e.actor, e.subject_id) for e in refused] == [("officer:officer01", str(cid))] * 2
        assert "资产：货车" not in labelled(s, cid)
    supervisor = login("supervisor01")
    assert "张建国" in results(supervisor, "张建国") and "王经理" in results(supervisor, "张建国")
    assert supervisor.get(f"/console/customers/{cid}").status_code == 200


def test_the_customer_page_shows_household_line_history_tags_applications_and_conversations(login, demo_settings):  # noqa: F811
    cid = zhang_id(demo_settings)
    hid = hand_off(demo_settings)
    page = login().get(f"/console/customers/{cid}").data.decode()
    assert "张建国" in page and "3212**********0119" in page
    assert "配偶" in page and "李秀英" in page  # the household
    assert "200,000元" in page and "授予200,000元" in page and "整村授信档案" in page  # the line and its history
    assert "职业" in page and "水稻种植" in page and "授信档案" in page  # tags with their source
    assert f"/console/hand-offs/{hid}" in page and "客户要求转人工" in page  # the conversations
    assert f'href="/console/customers/{cid}/apply"' in page  # application entry
    assert "没有申请" in page and "没有贷款" in page


def test_an_officer_sets_and_removes_a_tag_and_a_tag_outside_the_catalogue_is_refused(login, demo_settings):  # noqa: F811
    cid = zhang_id(demo_settings)
    officer = login()
    resp = officer.post(
        f"/console/customers/{cid}/tags",
        data={"tag": "business=个体工商户", "csrf": officer.csrf},
        follow_redirects=True,
    )
    page = resp.data.decode()
    assert "已加标签：经营主体：个体工商户" in page and "商e贷" in page  # now offered 商e贷 by tag
    resp = officer.post(f"/console/customers/{cid}/tags", data={"tag": "assets=飞机", "csrf": officer.csrf})
    assert resp.status_code == 400 and "标签“资产”没有“飞机”这个值" in resp.data.decode()
    resp = officer.post(
        f"/console/customers/{cid}/tags/remove",
        data={"kind": "business", "value": "个体工商户", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "已去掉标签：经营主体：个体工商户" in resp.data.decode()
    assert officer.post(f"/console/customers/{cid}/tags", data={"tag": "assets=农机"}).status_code == 400  # no CSRF
    with unit_of_work(demo_settings.database_url) as s:
        assert labelled(s, cid) == ["职业：水稻种植", "年收入：10-20万", "资产：农机", "已有产品：手机银行"]
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("customer_tag.%")).order_by(AuditEntry.id)
        ).all()
        assert actions == ["customer_tag.set", "customer_tag.refused", "customer_tag.removed"]
        refused = s.scalar(select(AuditEntry).where(AuditEntry.action == "customer_tag.refused"))
        assert (refused.actor, refused.detail["kind"], refused.detail["value"]) == (
            "officer:officer01",
            "assets",
            "飞机",
        )


def test_the_profile_beside_a_hand_off_shows_the_tags_and_links_the_customer_page(login, demo_settings):  # noqa: F811
    cid = zhang_id(demo_settings)
    hid = hand_off(demo_settings)
    page = login().get(f"/console/hand-offs/{hid}").data.decode()
    assert "客户标签：职业：水稻种植；年收入：10-20万；资产：农机；已有产品：手机银行" in page  # the summary
    assert f"/console/customers/{cid}" in page
