"""The mini-program API (/api/mp/) as the mini-program calls it: logins through the WeChat
emulator's jscode2session, the same services as the chat behind each endpoint, and every
refusal a JSON answer with a Chinese message and a code that changes nothing."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from auth_flow import signing
from auth_flow.evidence import Client
from auth_flow.signing import Proof
from handoff.service import request_hand_off
from lending.binding import BindLimits, confirm_code, request_code
from lending.contracts import find_by_token
from lending.customers import by_openid
from lending.loans import sync_loan
from lending.repayment import add_months
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, ConversationMessage, Customer, Loan, LoanApplication
from sunshine.mp_sessions import PREFIX
from sunshine.redis import connect
from tests.conftest import TEST_SECRET
from tests.unit.contract_helpers import TERMS, approved
from tests.unit.lending_helpers import service
from tests.unit.loan_helpers import core_today, paid_out

CHEN = ("陈立新", "321283196802010556")  # a demo customer bound to no WeChat
LI_DIGITS = "050229"  # 李秀英's last ID digits


class MiniProgram:
    """A mini-program talking to the web app: wx.login codes come from the WeChat emulator."""

    def __init__(self, client, wechat_base: str):
        self.client, self.wechat_base = client, wechat_base

    def wx_login(self, openid: str, unionid: str | None = None, code: str | None = None) -> str:
        spec = {"openid": openid, "unionid": unionid, **({"code": code} if code else {})}
        return requests.post(f"{self.wechat_base}/_emulator/jscodes", json=spec, timeout=5).json()["code"]

    def login(self, openid: str, unionid: str | None = None) -> str:
        resp = self.client.post("/api/mp/login", json={"code": self.wx_login(openid, unionid)})
        assert resp.status_code == 200, resp.json
        return resp.json["token"]

    def call(self, method: str, path: str, token: str | None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, token, **kwargs):
        return self.call("GET", path, token, **kwargs)

    def post(self, path, token, **kwargs):
        return self.call("POST", path, token, **kwargs)


@pytest.fixture
def mp(emulated, make_client, sms):
    settings, base, _ = emulated
    sms_client, texts = sms
    client = make_client(
        wechat_api_base=base, wechat_open_base=base, sms_api_base=sms_client.base_url, sms_api_key=sms_client.api_key
    )
    program = MiniProgram(client, base)
    program.texts = texts
    return program


def refused(resp, status: int, code: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.json)
    assert resp.json["code"] == code and re.search(r"[\u4e00-\u9fff]", resp.json["message"]), resp.json


def texted(texts, phone: str, before: int) -> str:
    """The newest text to `phone` after the first `before` (the binding texts from a thread)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [t["content"] for t in texts[before:] if t["phone"] == phone]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no text to {phone}")


def code_in(text: str) -> str:
    return re.search(r"验证码为(\d{6})", text).group(1)


def test_login_gives_a_bearer_token_for_a_code_that_works_once(mp, demo_settings):
    code = mp.wx_login("m_li", "u_demo_lixiuying", code="li-code-1")
    resp = mp.client.post("/api/mp/login", json={"code": code})
    assert resp.status_code == 200 and resp.json["bound"] is True and resp.json["expires_in"] == 7200
    token = resp.json["token"]
    assert "session_key" not in resp.json
    assert mp.get("/api/mp/me", token).json == {"bound": True, "name": "李**", "customer_type": "farmer"}
    # the session key stays with WeChat: Redis keeps the token's hash, the openid and the UnionID only
    r = connect(demo_settings.redis_url)
    stored = [r.get(k).decode() for k in r.scan_iter(PREFIX + "*")]
    assert stored == ['{"openid": "m_li", "unionid": "u_demo_lixiuying"}'] and token not in str(list(r.keys()))
    refused(mp.client.post("/api/mp/login", json={"code": code}), 401, "login_code_used")
    refused(mp.client.post("/api/mp/login", json={"code": "bad-code"}), 401, "login_code_invalid")
    refused(mp.client.post("/api/mp/login", json={}), 400, "bad_request")
    refused(mp.client.post("/api/mp/login", data="x", content_type="text/plain"), 400, "bad_request")
    refused(mp.get("/api/mp/me", None), 401, "login_required")
    refused(mp.get("/api/mp/me", token[:-2] + "xx"), 401, "session_invalid")
    refused(mp.call("GET", "/api/mp/me", None, headers={"Authorization": "Basic abc"}), 401, "session_invalid")
    assert mp.post("/api/mp/logout", token).status_code == 200
    refused(mp.get("/api/mp/me", token), 401, "session_invalid")
    expiring = mp.login("m_li", "u_demo_lixiuying")
    for key in r.scan_iter(PREFIX + "*"):
        r.delete(key)  # what MP_SESSION_TTL_S does
    refused(mp.get("/api/mp/me", expiring), 401, "session_invalid")


def test_forged_tokens_from_one_client_are_stopped(mp):
    for _ in range(20):
        refused(mp.get("/api/mp/me", "forged"), 401, "session_invalid")
    resp = mp.get("/api/mp/me", "forged")
    refused(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) > 0


def test_a_person_bound_in_the_official_account_is_recognised_in_the_mini_program_by_the_unionid_alone(
    mp, demo_settings, application
):
    """陈立新 binds in the chat (an SMS code to his phone), opens an authorization page in the
    Official Account (web authorization tells his UnionID), and logs into the mini-program: the
    mini-program's openid is new, the UnionID alone says who he is."""
    url, sent = demo_settings.database_url, []
    limits = BindLimits.from_settings(demo_settings)
    with unit_of_work(url) as s:
        request_code(s, TEST_SECRET, "o_chen", " ".join(CHEN), limits, lambda p, t: sent.append(t))
    with unit_of_work(url) as s:
        confirm_code(s, TEST_SECRET, "o_chen", code_in(sent[0]), limits, lambda p, t: sent.append(t))
    token = mp.login("m_chen", "u_chen")
    assert mp.get("/api/mp/me", token).json["bound"] is False  # the UnionID is not known yet
    # the H5 page's web authorization: WeChat tells the Official Account openid and the UnionID
    requests.post(f"{mp.wechat_base}/_emulator/oauth_user", json={"openid": "o_chen", "unionid": "u_chen"}, timeout=5)
    _, tokens, _ = application
    to_wechat = mp.client.get(f"/auth/{tokens['spouse']}")
    back = requests.get(to_wechat.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
    parts = urlsplit(back)
    assert mp.client.get(f"{parts.path}?{parts.query}").status_code == 302
    token = mp.login("m_chen", "u_chen")
    assert mp.get("/api/mp/me", token).json == {"bound": True, "name": "陈**", "customer_type": "farmer"}
    with unit_of_work(url) as s:
        chen = by_openid(s, "o_chen")
        assert (chen.unionid, chen.mp_openid) == ("u_chen", "m_chen")
    # the demo's 张建国: bound in the Official Account with his UnionID on file
    assert mp.get("/api/mp/me", mp.login("m_zhang", "u_demo_zhangjianguo")).json["name"] == "张**"


def test_binding_in_the_mini_program_is_the_chat_s_binding_and_is_recognised_in_the_official_account(mp, demo_settings):
    token, phone = mp.login("m_chen", "u_chen"), "13912340005"
    refused(mp.get("/api/mp/credit-line", token), 403, "not_bound")
    refused(
        mp.post("/api/mp/binding", token, json={"name": "陈立新", "id_number": "123"}), 400, "identification_failed"
    )
    refused(mp.post("/api/mp/binding", token, json={"name": "陈立新"}), 400, "bad_request")
    before = len(mp.texts)
    resp = mp.post("/api/mp/binding", token, json={"name": CHEN[0], "id_number": CHEN[1]})
    assert resp.status_code == 200 and "验证码" in resp.json["message"]
    code = code_in(texted(mp.texts, phone, before))
    assert mp.get("/api/mp/me", token).json["awaiting_code"] is True
    wrong = "000000" if code != "000000" else "111111"
    resp = mp.post("/api/mp/binding/confirm", token, json={"code": wrong})
    refused(resp, 409, "binding_refused")
    assert "还可以再试2次" in resp.json["message"]
    assert mp.get("/api/mp/me", token).json["bound"] is False
    resp = mp.post("/api/mp/binding/confirm", token, json={"code": code})
    assert resp.status_code == 200 and resp.json["name"] == "陈**"
    assert mp.get("/api/mp/me", token).json["bound"] is True
    refused(mp.post("/api/mp/binding", token, json={"name": CHEN[0], "id_number": CHEN[1]}), 409, "binding_refused")
    with unit_of_work(demo_settings.database_url) as s:
        chen = s.scalar(select(Customer).where(Customer.name == "陈立新"))
        assert (chen.mp_openid, chen.unionid, chen.wechat_openid) == ("m_chen", "u_chen", None)
        # the chat recognises him once web authorization tells the Official Account openid with the UnionID
        assert by_openid(s, "o_chen") is None and by_openid(s, "o_chen", "u_chen").id == chen.id


def test_the_credit_line_and_the_products_are_the_bot_s(mp):
    zhang = mp.login("m_zhang", "u_demo_zhangjianguo")
    line = mp.get("/api/mp/credit-line", zhang).json
    assert line["has_line"] and line["amount"] == 200_000 and line["used"] == 0 and line["held"] == 0
    assert line["left"] == 200_000 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", line["valid_until"])
    assert line["products"]
    mine = [p["code"] for p in mp.get("/api/mp/products", zhang).json["products"]]
    stranger = [p["code"] for p in mp.get("/api/mp/products", mp.login("m_nobody")).json["products"]]
    assert set(mine) < set(stranger)  # a farmer's products, all of them before binding
    refused(mp.get("/api/mp/credit-line", mp.login("m_nobody")), 403, "not_bound")


APPLY = {"product": "sunshine_e_loan", "amount": 30_000, "term_months": 12, "purpose": "买化肥"}


def count_applications(url) -> int:
    with unit_of_work(url) as s:
        return s.scalar(select(func.count()).select_from(LoanApplication))


def test_one_idempotency_key_makes_one_application_with_its_timeline(mp, demo_settings):
    url, zhang = demo_settings.database_url, mp.login("m_zhang", "u_demo_zhangjianguo")
    before = count_applications(url)
    refused(mp.post("/api/mp/applications", zhang, json=APPLY), 428, "idempotency_key_required")
    key = {"Idempotency-Key": "k-1"}
    refused(mp.post("/api/mp/applications", zhang, json={**APPLY, "amount": "3万"}, headers=key), 400, "bad_request")
    refused(
        mp.post("/api/mp/applications", zhang, json={**APPLY, "amount": 1}, headers=key), 422, "application_refused"
    )
    assert count_applications(url) == before
    made = mp.post("/api/mp/applications", zhang, json=APPLY, headers=key)
    assert made.status_code == 201 and made.json["status"] == "awaiting_authorization"
    again = mp.post("/api/mp/applications", zhang, json=APPLY, headers=key)
    assert again.status_code == 200 and again.json["id"] == made.json["id"]
    other = mp.post("/api/mp/applications", zhang, json={**APPLY, "amount": 40_000}, headers=key)
    refused(other, 409, "idempotency_key_reused")
    assert count_applications(url) == before + 1
    mine = mp.get("/api/mp/applications", zhang).json["applications"]
    assert [a["id"] for a in mine] == [made.json["id"]]
    assert [e["label"] for e in mine[0]["timeline"]] == ["还没提交", "已提交", "等待征信授权"]
    assert mine[0]["status_label"] == "等待征信授权"
    # another person's application is not theirs to withdraw
    li = mp.login("m_li", "u_demo_lixiuying")
    refused(mp.post(f"/api/mp/applications/{made.json['id']}/withdraw", li), 403, "not_yours")
    refused(mp.post("/api/mp/applications/999999/withdraw", zhang), 404, "not_found")
    gone = mp.post(f"/api/mp/applications/{made.json['id']}/withdraw", zhang)
    assert gone.status_code == 200 and gone.json["status"] == "withdrawn" and gone.json["status_label"] == "已撤销"
    refused(mp.post(f"/api/mp/applications/{made.json['id']}/withdraw", zhang), 409, "not_withdrawable")


def test_my_authorization_requests_open_the_h5_steps_with_the_mini_program_session_as_second_factor(
    mp, demo_settings, application
):
    url, (_, tokens, names) = demo_settings.database_url, application
    li = mp.login("m_li", "u_demo_lixiuying")
    mine = mp.get("/api/mp/authorizations", li).json["authorizations"]
    assert [(a["role"], a["role_label"], a["asked_by"], a["status_label"]) for a in mine] == [
        ("spouse", "配偶", "申请人张**", "待授权")
    ]
    with unit_of_work(url) as s:
        zhang_s = s.scalar(select(Authorization.id).where(Authorization.party_role == "applicant"))
    refused(mp.post(f"/api/mp/authorizations/{zhang_s}/open", li), 403, "not_yours")
    opened = mp.post(mine[0]["open"], li)
    assert opened.status_code == 200 and opened.json["page"].endswith(f"/auth/{opened.json['token']}")
    steps = opened.json["steps"]
    assert mp.client.get(f"/api/authorizations/{tokens['spouse']}").status_code == 404  # the earlier link: superseded
    # 张建国's mini-program session is not 李秀英's second factor; a forged one is refused outright
    zhang = mp.login("m_zhang", "u_demo_zhangjianguo")
    form = {"name": names["spouse"], "id_digits": LI_DIGITS}
    wrong = mp.post(f"{steps}/identity", zhang, json=form)
    assert wrong.status_code == 422 and "小程序的微信不是被查询人本人" in wrong.json["message"]
    refused(mp.post(f"{steps}/identity", "forged", json=form), 401, "session_invalid")
    passed = mp.post(f"{steps}/identity", li, json=form)
    assert passed.status_code == 200 and passed.json["ok"], passed.json
    with unit_of_work(url) as s:
        evidence = s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id.desc())).first()
        assert evidence.event == "identity_checked" and evidence.detail["factor"] == "mp_session"
    assert mp.get("/api/mp/authorizations", li).json["authorizations"][0]["status_label"] == "待授权"


def test_my_hand_off_conversation_is_read_and_written_while_open(mp, demo_settings):
    url, zhang = demo_settings.database_url, mp.login("m_zhang", "u_demo_zhangjianguo")
    assert mp.get("/api/mp/hand-off", zhang).json == {"open": False, "status": None, "messages": []}
    refused(mp.post("/api/mp/hand-off/messages", zhang, json={"text": "在吗"}), 409, "hand_off_closed")
    with unit_of_work(url) as s:
        request_hand_off(s, "o_demo_zhangjianguo", "customer_request")
    refused(mp.post("/api/mp/hand-off/messages", zhang, json={"text": ""}), 400, "bad_request")
    key = {"Idempotency-Key": "m-1"}
    sent = mp.post("/api/mp/hand-off/messages", zhang, json={"text": "想把期限改成24个月"}, headers=key)
    assert sent.status_code == 201
    again = mp.post("/api/mp/hand-off/messages", zhang, json={"text": "想把期限改成24个月"}, headers=key)
    assert again.status_code == 200 and again.json["duplicate"] is True
    conversation = mp.get("/api/mp/hand-off", zhang).json
    assert conversation["open"] is True
    assert [(m["author"], m["body"]) for m in conversation["messages"]] == [("我", "想把期限改成24个月")]
    with unit_of_work(url) as s:
        kept = s.scalars(select(ConversationMessage).order_by(ConversationMessage.id)).all()
        assert [(m.openid, m.author, m.direction) for m in kept] == [("o_demo_zhangjianguo", "customer", "inbound")]
    refused(mp.get("/api/mp/hand-off", mp.login("m_nobody")), 403, "not_bound")


def test_the_scenario_services_answer_from_the_bot_s_own_content(mp):
    from conversation.scenarios import answer_for

    for topic, key in (
        ("hospital-payment", "hospital_payment"),
        ("housing-lottery", "housing_lottery"),
        ("hanshan-park", "scenic_ticket"),
    ):
        resp = mp.client.get(f"/api/mp/services/{topic}")
        assert resp.status_code == 200 and resp.json["text"] == answer_for(key).text
        assert resp.json["offer"] == answer_for(key).offer and resp.json["topic"] == topic
    refused(mp.client.get("/api/mp/services/lottery"), 404, "unknown_topic")


def test_my_contract_is_found_by_my_application_and_opens_the_contract_s_own_steps(mp, demo_settings, application):
    zhang = mp.login("m_zhang", "u_demo_zhangjianguo")
    refused(mp.get(f"/api/mp/applications/{application[0]}/contract", zhang), 404, "no_contract")  # not approved
    _, _, app_id, token = approved(demo_settings.database_url, amount=60_000)
    mine = mp.get(f"/api/mp/applications/{app_id}/contract", zhang)
    assert mine.status_code == 200 and mine.json["status"] == "offered" and mine.json["status_label"] == "待签署"
    assert mine.json["api"] == f"/api/contracts/{token}" and mine.json["page"].endswith(f"/contract/{token}")
    assert mine.json["contract_number"] == f"YGJK{app_id:08d}"
    refused(mp.get(f"/api/mp/applications/{app_id}/contract", mp.login("m_li", "u_demo_lixiuying")), 403, "not_yours")
    with unit_of_work(demo_settings.database_url) as s:  # an officer renewed its link: the old one is dead
        renewed = signing.renew(s, find_by_token(s, token), TERMS, Proof(), Client(), by="officer:officer01")
    again = mp.get(f"/api/mp/applications/{app_id}/contract", zhang)
    assert again.json["api"] == f"/api/contracts/{renewed}" != f"/api/contracts/{token}"


def test_my_loans_and_a_loan_s_schedule_with_today_s_early_repayment(mp, demo_settings, corebank):
    client, url, _ = corebank
    settings = replace(demo_settings, core_banking_url=url)
    svc, _ = service(core_banking=client)
    zhang = mp.login("m_zhang", "u_demo_zhangjianguo")
    assert mp.get("/api/mp/loans", zhang).json == {"loans": []}
    loan_id = paid_out(settings, svc, "interest_monthly")
    late = add_months(clock.today(), 1) + timedelta(days=2)
    core_today(url, late)
    with unit_of_work(settings.database_url) as s:
        sync_loan(s, client, loan_id)
        loan = s.get(Loan, loan_id)
        first, second = loan.instalments[0], loan.instalments[1]
    with clock.travel_to(late):
        (mine,) = mp.get("/api/mp/loans", zhang).json["loans"]
        detail = mp.get(f"/api/mp/loans/{loan_id}", zhang)
    assert (mine["id"], mine["status"], mine["status_label"], mine["repayment_method_label"]) == (
        loan_id,
        "overdue",
        "已逾期",
        "按月付息、到期还本",
    )
    assert mine["overdue_fen"] == first.interest_fen and mine["overdue_days"] == 2
    assert mine["next_due"] == {"number": 2, "due_date": second.due_date.isoformat(), "amount_fen": second.interest_fen}
    assert mine["settlement_account"].startswith("尾号") and mine["principal_outstanding_fen"] == 5_000_000
    assert detail.status_code == 200 and detail.json["loan_account"] == mine["loan_account"]
    schedule = detail.json["instalments"]
    assert len(schedule) == 12 and [i["status_label"] for i in schedule[:2]] == ["已逾期", "待还"]
    assert schedule[-1]["principal_fen"] == 5_000_000 and schedule[0]["owed_fen"] == first.interest_fen
    early = detail.json["early_repayment"]
    assert early["on"] == late.isoformat() and early["principal_fen"] == 5_000_000
    assert early["interest_due_fen"] == first.interest_fen and early["interest_accrued_fen"] == 1208  # 2 days
    assert early["total_fen"] == 5_000_000 + first.interest_fen + 1208
    refused(mp.get(f"/api/mp/loans/{loan_id}", mp.login("m_li", "u_demo_lixiuying")), 403, "not_yours")
    refused(mp.get("/api/mp/loans/999999", zhang), 404, "not_found")
    refused(mp.get("/api/mp/loans", mp.login("m_nobody")), 403, "not_bound")
