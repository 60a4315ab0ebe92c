"""The officer's workbench through Flask's test client: the home page the console lands on
(today's work with counts and links), canned replies in a conversation, and the branch's
figures for supervisors (charts, the table, the CSV for Excel; 403 for an officer)."""

from __future__ import annotations

import csv
import io
import re

from handoff.canned import load_canned_replies
from handoff.figures import COLUMNS
from sunshine.db import unit_of_work
from sunshine.models import Customer
from tests.web.test_console_officers import csrf_of, hand_off, login  # noqa: F401 (the fixture)


def test_the_console_lands_on_the_home_page_with_todays_work(make_client, demo_settings, login):  # noqa: F811
    mine = hand_off(demo_settings)  # 张建国 is officer01's customer
    queued = hand_off(demo_settings, "o_stranger")  # nobody's: the branch queue
    client = make_client()
    token = csrf_of(client.get("/console/login").data)
    resp = client.post("/console/login", data={"username": "officer01", "password": "sunshine-demo", "csrf": token})
    assert resp.headers["Location"].endswith("/console/home")
    page = client.get("/console/home")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.data.decode()
    assert "今日工作" in html and "待办 <strong>2</strong> 件" in html
    mine_section = re.search(r'<section class="card" id="work-hand_offs" data-count="1">.*?</section>', html, re.S)
    assert mine_section and f'href="/console/hand-offs/{mine}"' in mine_section.group(0)
    assert "张建国" in mine_section.group(0) and "客户要求转人工" in mine_section.group(0)
    assert f'href="/console/hand-offs/{queued}"' in html and 'id="work-branch_queue" data-count="1"' in html
    assert 'id="work-decisions" data-count="0"' in html and "没有等您审批的申请。" in html
    assert "work-second_approvals" not in html  # supervisors only
    assert client.get("/console").status_code == 200  # the queue is where it was
    rows = client.get("/console/home/rows")
    assert rows.status_code == 200 and 'id="work-hand_offs" data-count="1"' in rows.data.decode()
    supervisor = login("supervisor01").get("/console/home").data.decode()
    assert 'id="work-second_approvals" data-count="0"' in supervisor and "支行数据" in supervisor
    assert "支行数据" not in html


def test_the_home_page_needs_a_login(make_client):
    resp = make_client().get("/console/home")
    assert resp.status_code == 302 and "/console/login?next=/console/home" in resp.headers["Location"]


def test_the_conversation_offers_the_canned_replies_to_insert(login, demo_settings):  # noqa: F811
    hid = hand_off(demo_settings)
    html = login().get(f"/console/hand-offs/{hid}").data.decode()
    picker = re.search(r'<select id="canned-replies" data-insert-into="reply-text">(.*?)</select>', html, re.S)
    assert picker and 'id="reply-text" name="text"' in html
    groups = load_canned_replies()
    assert picker.group(1).count("<optgroup") == len(groups)
    first = groups[0].replies[0]
    assert f'<option value="{first.text}">{first.title}</option>' in picker.group(1)


def test_an_officer_may_not_see_the_branchs_figures(login):  # noqa: F811
    officer = login()
    for path in ("/console/figures", "/console/figures.csv"):
        resp = officer.get(path)
        assert resp.status_code == 403 and "支行数据只有主管可以查看" in resp.data.decode()


def test_the_supervisor_sees_the_figures_as_charts_and_a_table(login, demo_settings):  # noqa: F811
    hand_off(demo_settings)
    resp = login("supervisor01").get("/console/figures?from=2026-01-01&to=2026-12-31")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    html = resp.data.decode()
    assert html.count("<svg") == 8 and "<script" not in html.split("<main>")[1].split("</main>")[0]
    assert "建档面、授信面与用信率" in html and "黄桥村" in html and "全支行" in html
    table = re.search(r'<table id="figures-table">(.*?)</table>', html, re.S).group(1)
    branch_row = table.split('<tr class="total">')[1]
    assert re.search(r'data-column="households">\d+</td>', branch_row)
    assert 'data-column="filed_share">100.0%</td>' in branch_row  # every demo household has its file
    assert 'value="2026-01-01"' in html and "/console/figures.csv?from=2026-01-01&amp;to=2026-12-31" in html


def test_a_bad_period_is_refused_in_chinese(login):  # noqa: F811
    supervisor = login("supervisor01")
    resp = supervisor.get("/console/figures?from=2026-12-02&to=2026-12-01")
    assert resp.status_code == 400 and "开始日期不能晚于结束日期" in resp.data.decode()
    assert supervisor.get("/console/figures.csv?from=昨天").status_code == 400


def test_the_csv_opens_in_excel_and_carries_no_formula(login, demo_settings):  # noqa: F811
    with unit_of_work(demo_settings.database_url) as s:
        s.query(Customer).filter(Customer.name == "王春华").update({"village": "=HYPERLINK(1)"})
    resp = login("supervisor01").get("/console/figures.csv?from=2026-11-01&to=2026-11-30")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="branch-figures-2026-11-01-2026-11-30.csv"'
    assert resp.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert rows[0] == ["村", *(heading for heading, _, _ in COLUMNS)]
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(1)", "黄桥村", "全支行"]
    branch = dict(zip(rows[0], rows[-1], strict=True))
    village = dict(zip(rows[0], rows[2], strict=True))
    assert int(branch["户数"]) == int(village["户数"]) + 1 and branch["建档面"] == "100.0%"
    assert branch["平均首次回复（分钟）"] == "—"
