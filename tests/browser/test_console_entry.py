"""录入申请 in a real browser (Debian's Chromium driven by Playwright) against the whole stack:
officer01 finds a customer of theirs by ID number, enters a guaranteed loan with the customer's
spouse from the household file and a guarantor by ID number, gets the printable page of the three
QR codes, and each party's WeChat (the WeChat API emulator) receives their own link."""

from __future__ import annotations

import io
import re

import requests
from sqlalchemy import select

from lending.customers import by_id_number
from lending.identity import check_digit
from lending.village_file import import_lines
from sunshine.db import unit_of_work
from sunshine.demo import demo_valid_until
from sunshine.models import LoanApplication, Officer
from tests.browser.test_console import wait_for


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


# A household and a guarantor of this test's own: no other test on the shared stack uses them.
HEAD, SPOUSE, GUARANTOR = _id("32128319660606071"), _id("32128319680808082"), _id("32128319720202093")
OPENIDS = {HEAD: "o_entry_huangyongqiang", SPOUSE: "o_entry_xumeifang", GUARANTOR: "o_entry_zhoujianping"}


def _household(stack) -> None:
    """黄永强 (spouse 徐美芳) and 周建平 in the village file, each bound to their WeChat, officer01's customers."""
    secret, db = stack.env["SECRET_KEY"], stack.env["DATABASE_URL"]
    valid = demo_valid_until()
    village = (
        "village,household_head,id_number,phone,customer_type,credit_line,valid_until,members,tags\n"
        f"黄桥村,黄永强,{HEAD},13912340031,farmer,200000,{valid},spouse:徐美芳:{SPOUSE}:13912340032,\n"
        f"黄桥村,周建平,{GUARANTOR},13912340033,farmer,100000,{valid},,\n"
    )
    with unit_of_work(db) as s:
        report = import_lines(s, secret, io.StringIO(village), actor="test")
        assert not report.errors, report.errors
        officer_id = s.scalar(select(Officer.id).where(Officer.username == "officer01"))
        for id_number, openid in OPENIDS.items():
            person = by_id_number(s, secret, id_number)
            person.wechat_openid, person.officer_id = openid, officer_id


def _received(stack, openid: str) -> list[str]:
    """What this WeChat user was sent: customer-service texts, and the links template messages open."""
    sent = requests.get(stack.wechat_api + "/_emulator/messages", params={"touser": openid}, timeout=5).json()
    return [m["content"] or (m["payload"] or {}).get("url") or "" for m in sent]


def test_officer_enters_an_application_prints_the_codes_and_each_party_gets_theirs(stack, launch_chromium):
    _household(stack)
    page = launch_chromium().new_page()
    page.goto(stack.web + "/console")
    page.fill("input[name=username]", "officer01")
    page.fill("input[name=password]", "sunshine-demo")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue")

    page.click("header >> text=录入申请")
    page.fill("input[name=id_number]", HEAD)
    page.click("text=下一步")
    page.wait_for_selector("#entry")
    assert "为黄永强录入贷款申请" in page.inner_text("h1")
    assert "徐**（身份证3212**********" in page.inner_text("#spouse")
    page.select_option("#entry-product", "sunshine_e_loan")
    six_months = page.locator('#entry-term option[value="6"]')
    assert page.is_hidden("#entry-guarantor") and not six_months.evaluate("o => o.hidden")  # 阳光e贷: no guarantor
    page.select_option("#entry-product", "guaranteed_farm_loan")
    assert page.is_visible("#entry-guarantor") and six_months.evaluate("o => o.hidden")  # 富农担保贷: 12 months up
    page.fill("input[name=amount]", "10万")
    page.select_option("#entry-term", "24")
    page.fill("input[name=purpose]", "扩大养殖")
    page.fill("input[name=guarantor]", GUARANTOR)
    page.click("text=提交申请并发送授权请求")

    page.wait_for_selector(".auth-code")
    assert "已录入黄永强的富农担保贷申请（10万元，24个月）" in page.inner_text("main")
    cards = page.locator(".auth-code")
    assert cards.count() == 3
    assert [cards.nth(i).locator("h2").inner_text().split("（")[0] for i in range(3)] == [
        "借款人本人：黄永强",
        "借款人配偶：徐美芳",
        "担保人：周建平",
    ]
    for i in range(3):  # each QR code is a real image the browser decoded
        assert cards.nth(i).locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    links = [cards.nth(i).locator(".link").inner_text() for i in range(3)]
    assert all(re.search(r"/auth/[A-Za-z0-9_-]{20,}$", link) for link in links)

    # each party's WeChat received their own link (the same one as printed), through the worker
    for id_number, link in zip((HEAD, SPOUSE, GUARANTOR), links, strict=True):
        openid = OPENIDS[id_number]
        wait_for(lambda openid=openid, link=link: any(link in m for m in _received(stack, openid)), timeout_s=30)
    with unit_of_work(stack.env["DATABASE_URL"]) as s:
        head = by_id_number(s, stack.env["SECRET_KEY"], HEAD)
        [application] = s.scalars(
            select(LoanApplication).where(LoanApplication.customer_id == head.id).order_by(LoanApplication.id)
        ).all()
        assert application.status == "awaiting_authorization" and application.events[0].actor == "officer:officer01"
