"""The officer console through Flask's test client on a real database and Redis:
login, permissions, CSRF, the queue, a conversation, replies, claim, transfer,
close (the bot answers again), and decisions on applications."""

import re
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from handoff import service as h
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.jobs import queue_name
from sunshine.models import (
    ApplicationEvent,
    ConversationMessage,
    HandOff,
    LoanApplication,
    NoticeDelivery,
    Officer,
    utcnow,
)
from sunshine.redis import connect

OPENID = "o_demo_zhangjianguo"


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


@pytest.fixture
def login(make_client):
    def login_as(username="officer01", password="sunshine-demo"):
        client = make_client()
        token = csrf_of(client.get("/console/login").data)
        resp = client.post("/console/login", data={"username": username, "password": password, "csrf": token})
        assert resp.status_code == 302
        client.csrf = csrf_of(client.get("/console").data)  # a new session: a new token
        assert client.csrf != token
        return client

    return login_as


def hand_off(settings, openid=OPENID, reason="customer_request", **kw):
    with unit_of_work(settings.database_url) as s:
        return h.request_hand_off(s, openid, reason, **kw)[0].id


def customer_wrote(settings, hand_off_id, body, key):
    with unit_of_work(settings.database_url) as s:
        h.keep_customer_message(s, s.get(HandOff, hand_off_id), body, key)


def jobs_for(settings, openid=OPENID):
    return Queue(queue_name(openid, settings.worker_processes), connection=connect(settings.redis_url)).jobs


def test_not_logged_in_pages_go_to_login_and_api_answers_401(make_client, demo_settings):
    client = make_client()
    resp = client.get("/console/hand-offs/1")
    assert resp.status_code == 302 and "/console/login?next=/console/hand-offs/1" in resp.headers["Location"]
    resp = client.get("/api/console/queue")
    assert resp.status_code == 401 and resp.json["message"] == "请先登录"


def test_login_returns_to_the_page_asked_for_never_elsewhere(make_client, demo_settings):
    hid = hand_off(demo_settings)
    client = make_client()
    token = csrf_of(client.get("/console/login").data)
    form = {"username": "officer01", "password": "sunshine-demo", "csrf": token}
    assert (
        client.post("/console/login", data=dict(form, next=f"/console/hand-offs/{hid}"))
        .headers["Location"]
        .endswith(f"/console/hand-offs/{hid}")
    )
    token = csrf_of(client.get("/console/login").data)
    assert (
        client.post("/console/login", data=dict(form, csrf=token, next="https://evil.example/"))
        .headers["Location"]
        .endswith("/console/home")
    )


def test_officer_gets_403_on_another_officers_conversation_supervisor_does_not(login, demo_settings):
    from conversation.followers import followed, station_by_code

    with unit_of_work(demo_settings.database_url) as s:
        followed(s, "o_station_scan", station_by_code(s, "HQ002"))  # supervisor01's station
    others = hand_off(demo_settings, "o_station_scan")
    officer = login()
    assert officer.get(f"/console/hand-offs/{others}").status_code == 403
    assert officer.get(f"/api/console/hand-offs/{others}/messages").status_code == 403
    resp = officer.post(f"/api/console/hand-offs/{others}/replies", data={"text": "hi", "csrf": officer.csrf})
    assert resp.status_code == 403
    assert officer.post(f"/console/hand-offs/{others}/close", data={"csrf": officer.csrf}).status_code == 403
    assert officer.get("/console/hand-offs/99999").status_code == 404
    supervisor = login("supervisor01")
    assert supervisor.get(f"/console/hand-offs/{others}").status_code == 200
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(HandOff, others).status == "open"


def test_forged_or_missing_csrf_is_400_and_changes_nothing(login, demo_settings):
    hid = hand_off(demo_settings)
    officer = login()
    for data in ({"text": "你好"}, {"text": "你好", "csrf": "forged"}):
        resp = officer.post(f"/api/console/hand-offs/{hid}/replies", data=data)
        assert resp.status_code == 400 and resp.json["message"] == "表单已过期，请刷新页面后重试"
        assert officer.post(f"/console/hand-offs/{hid}/close", data=data).status_code == 400
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(HandOff, hid).status == "open"
        assert s.scalar(select(ConversationMessage)) is None


def test_conversation_shows_profile_and_escaped_messages(login, demo_settings):
    summary = {"last_intent": "request_human", "recent_messages": ["我能贷多少", "转人工"]}
    hid = hand_off(demo_settings, summary=summary)
    customer_wrote(demo_settings, hid, "<script>alert('x')</script>", "m1")
    customer_wrote(demo_settings, hid, "身份证321283197503120119 电话13912345678", "m2")
    page = login().get(f"/console/hand-offs/{hid}").data.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "张建国" in page and "3212**********0119" in page and "321283197503120119" not in page
    assert "139****5678" in page and "13912345678" not in page  # what the customer typed, masked
    assert "200,000元" in page and "水稻种植" in page  # credit line and tags from the village file
    assert "机器人对话记录暂时取不到" in page and "我能贷多少 / 转人工" in page  # no Rasa here: the summary
    assert "意图：request_human" in page
    messages = login().get(f"/api/console/hand-offs/{hid}/messages").json["messages"]
    assert messages[0]["body"] == "<script>alert('x')</script>"  # JSON; the page sets it as text
    assert messages[1]["body"] == "身份证3212**********0119 电话139****5678"
    with unit_of_work(demo_settings.database_url) as s:  # stored whole: nothing the customer wrote is lost
        assert s.scalar(select(ConversationMessage.body).where(ConversationMessage.wechat_msg_key == "m2")).startswith(
            "身份证321283197503120119"
        )


def test_reply_is_stored_queued_for_the_customer_and_claims_the_hand_off(login, demo_settings):
    hid = hand_off(demo_settings, "o_stranger")  # the branch queue
    officer = login()
    resp = officer.post(
        f"/api/console/hand-offs/{hid}/replies", data={"text": " 您好，我是李经理 ", "csrf": officer.csrf}
    )
    assert resp.status_code == 201 and resp.json["status"] == "queued" and resp.json["body"] == "您好，我是李经理"
    [job] = jobs_for(demo_settings, "o_stranger")
    assert job.func_name == "handoff.jobs.send_message" and job.args == (resp.json["id"],)
    with unit_of_work(demo_settings.database_url) as s:
        ho = s.get(HandOff, hid)
        assert (ho.status, ho.officer.username) == ("claimed", "officer01")
    resp = officer.post(f"/api/console/hand-offs/{hid}/replies", data={"text": "  ", "csrf": officer.csrf})
    assert resp.status_code == 409 and resp.json["message"] == "请先写好回复内容"


def test_reply_to_a_closed_hand_off_gets_a_clear_message(login, demo_settings):
    hid = hand_off(demo_settings)
    officer = login()
    assert officer.post(f"/console/hand-offs/{hid}/close", data={"csrf": officer.csrf}).status_code == 302
    resp = officer.post(f"/api/console/hand-offs/{hid}/replies", data={"text": "还在吗", "csrf": officer.csrf})
    assert resp.status_code == 409 and "这个会话已经结束，不能再回复" in resp.json["message"]
    page = officer.post(f"/console/hand-offs/{hid}/reply", data={"text": "还在吗", "csrf": officer.csrf})
    assert page.status_code == 409 and "这个会话已经结束，不能再回复" in page.data.decode()
    with unit_of_work(demo_settings.database_url) as s:
        assert [m.body for m in s.scalars(select(ConversationMessage).order_by(ConversationMessage.id))] == [
            h.CLOSING_NOTE
        ]


def test_claim_transfer_and_the_queue(login, demo_settings):
    hid = hand_off(demo_settings)
    officer = login()
    queue = officer.get("/console").data.decode()
    assert f'data-hand-off="{hid}"' in queue and "客户要求转人工" in queue and "待接手" in queue
    version = officer.get("/api/console/changes").json["version"]
    resp = officer.post(f"/console/hand-offs/{hid}/claim", data={"csrf": officer.csrf}, follow_redirects=True)
    assert "已接手这个会话" in resp.data.decode()
    assert officer.get("/api/console/changes").json["version"] != version
    assert officer.get("/api/console/queue").json["hand_offs"][0]["status"] == "claimed"
    supervisor_id = login("supervisor01").get("/api/console/queue").json  # sees it too
    assert [x["id"] for x in supervisor_id["hand_offs"]] == [hid]
    with unit_of_work(demo_settings.database_url) as s:
        from sunshine.models import Officer

        zhou = s.scalar(select(Officer.id).where(Officer.username == "supervisor01"))
    resp = officer.post(
        f"/console/hand-offs/{hid}/transfer", data={"officer_id": "0", "csrf": officer.csrf}, follow_redirects=True
    )
    assert "没有这位客户经理" in resp.data.decode()
    resp = officer.post(
        f"/console/hand-offs/{hid}/transfer", data={"officer_id": zhou, "csrf": officer.csrf}, follow_redirects=True
    )
    assert "已转交给周主任" in resp.data.decode()
    assert officer.get("/api/console/queue").json["hand_offs"] == []
    assert officer.get(f"/console/hand-offs/{hid}").status_code == 403


def test_supervisor_sees_overdue_items_of_every_officer(login, demo_settings):
    late = hand_off(demo_settings, deadline=timedelta(minutes=-5))
    page = login("supervisor01").get("/console").data.decode()
    assert 'id="overdue"' in page and f"会话 {late}" in page and "李经理" in page
    assert 'id="overdue"' not in login().get("/console").data.decode()
    rows = login("supervisor01").get("/console/queue/rows?officer=9999").data.decode()
    assert "目前没有待处理的会话" in rows


def test_close_hands_the_customer_back_to_the_bot(login, demo_settings, serve_webhook, bot):
    user = serve_webhook()
    hid = hand_off(demo_settings)
    assert user.send_text("我想问问利息").content == "您的消息已转给客户经理，请稍候，回复会直接发到这里。"
    assert bot.asked == []
    officer = login()
    assert "我想问问利息" in officer.get(f"/console/hand-offs/{hid}").data.decode()
    resp = officer.post(
        f"/console/hand-offs/{hid}/close", data={"csrf": officer.csrf, "note": "已解答"}, follow_redirects=True
    )
    assert "会话已结束" in resp.data.decode()
    assert [j.func_name for j in jobs_for(demo_settings)] == ["handoff.jobs.send_message"]  # the closing note
    assert user.send_text("我能贷多少").content == "已收到：我能贷多少"
    assert bot.asked == ["我能贷多少"]


def _application_under_review(settings) -> int:
    with unit_of_work(settings.database_url) as s:
        customer = by_openid(s, OPENID)
        application = LoanApplication(
            customer_id=customer.id,
            product_code="guaranteed_farm_loan",
            amount=150000,
            term_months=12,
            purpose="买农机",
            status="under_review",
            review_mode="officer",
            review_deadline=utcnow() + timedelta(hours=3),
        )
        s.add(application)
        s.flush()
        return application.id


def test_officer_approves_or_rejects_with_a_reason_through_the_lending_service(login, demo_settings):
    app_id = _application_under_review(demo_settings)
    officer = login()
    assert f'href="/console/applications/{app_id}"' in officer.get("/console").data.decode()
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    assert "买农机" in page and 'id="decision"' in page
    resp = officer.post(
        f"/console/applications/{app_id}/decision",
        data={"decision": "reject", "reason": " ", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "请填写审批意见" in resp.data.decode()
    assert (
        officer.post(
            f"/console/applications/{app_id}/decision", data={"decision": "maybe", "reason": "x", "csrf": officer.csrf}
        ).status_code
        == 400
    )
    resp = officer.post(
        f"/console/applications/{app_id}/decision",
        data={"decision": "approve", "reason": "经营稳定，担保充足", "csrf": officer.csrf},
    )
    assert resp.status_code == 302
    with unit_of_work(demo_settings.database_url) as s:
        application = s.get(LoanApplication, app_id)
        event = s.scalar(select(ApplicationEvent).where(ApplicationEvent.application_id == app_id))
        assert application.status == "approved"
        assert (event.actor, event.reason) == ("officer:officer01", "经营稳定，担保充足")
    resp = officer.post(
        f"/console/applications/{app_id}/decision",
        data={"decision": "reject", "reason": "改主意", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "这笔申请目前审批通过" in resp.data.decode()
    history = officer.get(f"/console/applications/{app_id}").data.decode()
    assert "<td>李经理</td>" in history and "officer:officer01" not in history  # who decided, by name


def test_a_hand_off_about_an_application_links_to_it(login, demo_settings):
    app_id = _application_under_review(demo_settings)
    hid = hand_off(demo_settings, reason="above_auto_limit", application_id=app_id)
    page = login().get(f"/console/hand-offs/{hid}").data.decode()
    assert f'href="/console/applications/{app_id}">申请 {app_id}</a>' in page and "超过自动审批额度" in page


def test_another_officers_application_is_403(login, demo_settings):
    app_id = _application_under_review(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        from sunshine.models import Officer

        s.get(LoanApplication, app_id).customer.officer_id = s.scalar(
            select(Officer.id).where(Officer.username == "supervisor01")
        )
    assert login().get(f"/console/applications/{app_id}").status_code == 403
    assert login("supervisor01").get(f"/console/applications/{app_id}").status_code == 200


def test_five_wrong_passwords_hold_that_user_name_back_from_that_address(make_client, login):
    client = make_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.50"
    for _ in range(5):
        token = csrf_of(client.get("/console/login").data)
        resp = client.post("/console/login", data={"username": "officer01", "password": "guess", "csrf": token})
        assert resp.status_code == 401 and "用户名或密码不对" in resp.data.decode()
    token = csrf_of(client.get("/console/login").data)
    resp = client.post("/console/login", data={"username": "officer01", "password": "sunshine-demo", "csrf": token})
    assert resp.status_code == 429 and "密码错误次数太多" in resp.data.decode()
    login("supervisor01")  # other user names are not affected
    login("officer01")  # nor is the same user name from another address


def test_a_database_failure_while_keeping_the_customers_message_leaves_it_with_the_bot(
    demo_settings, serve_webhook, bot, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    import conversation.inbound as inbound

    def unavailable(*args):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(inbound, "keep_customer_message", unavailable)
    user = serve_webhook()
    hand_off(demo_settings)
    user.send_text("我想问问利息")
    assert bot.asked == ["我想问问利息"]  # answered by the bot, not dropped


def test_officer_reissues_and_prints_the_authorization_codes(login, demo_settings):
    from auth_flow.tokens import AuthorizationError, find_by_token
    from tests.unit.lending_helpers import service

    applications, _ = service()
    with unit_of_work(demo_settings.database_url) as s:
        app_id = applications.apply(s, by_openid(s, OPENID).id, "sunshine_e_loan", 50000, 12, "print-test").id
    officer = login()
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    assert "生成并打印授权二维码" in page
    assert officer.post(f"/console/applications/{app_id}/authorization-codes").status_code == 400  # no CSRF
    resp = officer.post(f"/console/applications/{app_id}/authorization-codes", data={"csrf": officer.csrf})
    page = resp.data.decode()
    assert resp.status_code == 200 and page.count('src="data:image/png;base64,') == 2
    assert (
        "借款人本人：张建国" in page and "借款人配偶：李秀英" in page and "3212**************" in page
    )  # printed for the party: no digits the check asks
    tokens = re.findall(r"/auth/([A-Za-z0-9_-]{20,})</p>", page)
    again = officer.post(f"/console/applications/{app_id}/authorization-codes", data={"csrf": officer.csrf})
    with unit_of_work(demo_settings.database_url) as s:
        for token in tokens:  # reissued: the printed ones are void
            with pytest.raises(AuthorizationError):
                find_by_token(s, token)
        fresh = re.findall(r"/auth/([A-Za-z0-9_-]{20,})</p>", again.data.decode())
        assert [find_by_token(s, t).requested_by for t in fresh] == ["officer:officer01"] * 2


def test_undelivered_replies_say_why_and_offer_the_right_resend(login, demo_settings):
    hid = hand_off(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        officer = s.scalar(select(Officer).where(Officer.username == "officer01"))
        for text, errcode in (("窗口外", 45015), ("太多了", 45047), ("没送到", None)):
            message = h.officer_reply(s, s.get(HandOff, hid), officer, text)
            message.status, message.errcode = "undelivered", errcode
    client = login()
    sent = {m["body"]: m for m in client.get(f"/api/console/hand-offs/{hid}/messages").json["messages"]}
    assert [(sent[t]["hint"][:10], sent[t]["resend"]) for t in ("窗口外", "太多了", "没送到")] == [
        ("客户超过48小时没有", "用模板消息发送"),
        ("客户未回复前发的消息", "重发"),
        ("可以重发", "重发"),
    ]
    page = client.get(f"/console/hand-offs/{hid}").data.decode()
    assert page.count(">用模板消息发送</button>") == 1 and page.count(">重发</button>") == 2


def test_a_large_approval_waits_for_another_supervisor_in_the_console(login, demo_settings):
    from werkzeug.security import generate_password_hash

    app_id = _application_under_review(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        s.get(LoanApplication, app_id).amount = 350_000  # above 富农担保贷's 300,000
        s.add(
            Officer(
                username="supervisor02",
                display_name="吴主任",
                role="supervisor",
                password_hash=generate_password_hash("sunshine-demo"),
                must_change_password=False,
            )
        )
    officer = login()
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    assert "您通过后还需要另一位主管复核" in page
    resp = officer.post(
        f"/console/applications/{app_id}/decision",
        data={"decision": "approve", "reason": "经营稳定", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "等待另一位主管复核" in resp.data.decode()
    assert "待复核" in officer.get("/console/queue/rows").data.decode()
    assert officer.get("/api/console/queue").json["applications"][0]["awaiting_second_approval"] is True
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    assert "待复核" in page and 'id="decision"' not in page and "审批人本人不能复核" in page
    resp = officer.post(  # the form is gone, and a forged POST is refused too
        f"/console/applications/{app_id}/decision",
        data={"decision": "approve", "reason": "我自己复核", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "需要主管复核" in resp.data.decode()
    supervisor = login("supervisor01")
    page = supervisor.get(f"/console/applications/{app_id}").data.decode()
    assert "复核通过" in page and "李经理（officer01）已于" in page
    resp = supervisor.post(
        f"/console/applications/{app_id}/decision",
        data={"decision": "approve", "reason": "复核同意", "csrf": supervisor.csrf},
    )
    assert resp.status_code == 302
    with unit_of_work(demo_settings.database_url) as s:
        application = s.get(LoanApplication, app_id)
        history = [(e.actor, e.action) for e in application.events]
        assert application.status == "approved"
        assert history == [("officer:officer01", "first_approval"), ("officer:supervisor01", "approved")]


def test_the_application_page_shows_which_channel_carried_each_notice(login, demo_settings):
    app_id = _application_under_review(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        for channel, status in (("subscribe", "delivered"), ("officer", "to_officer"), (None, "queued")):
            s.add(
                NoticeDelivery(
                    kind="application_status",
                    openid=OPENID,
                    application_id=app_id,
                    text=f"通知经{channel}",
                    status=status,
                    channel=channel,
                )
            )
    page = login().get(f"/console/applications/{app_id}").data.decode()
    notices = page[page.index('id="notices"') :]
    assert "通知客户" in notices and "贷款审批进度" in notices
    assert notices.index("订阅消息") < notices.index("转客户经理") < notices.index("发送中")
