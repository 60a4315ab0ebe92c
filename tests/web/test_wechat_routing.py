"""What `/wechat` does with each kind of message and event, over real HTTP as WeChat posts them."""

from datetime import timedelta

from sqlalchemy import select

from auth_flow.tokens import issue
from conversation.inbound import (
    MENU_INTENTS,
    NOT_UNDERSTOOD_MEDIA,
    PASSED_TO_OFFICER,
    UNKNOWN_MENU,
    UNKNOWN_QR_CODE,
    VOICE_NOT_RECOGNISED,
)
from handoff.service import close_hand_off, open_hand_off, request_hand_off
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import ConversationMessage, Follower, Officer
from sunshine.qrcodes import scene
from tests.conftest import TEST_SECRET

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def follower(settings, openid):
    with unit_of_work(settings.database_url) as s:
        f = s.get(Follower, openid)
        return None if f is None else (f.subscribed, f.station.code if f.station else None)


def test_voice_uses_the_recognition_text_or_asks_to_type(serve_webhook, bot):
    user = serve_webhook()
    assert user.send_voice("俺想借点钱").content == "已收到：俺想借点钱"
    assert user.send_voice("").content == VOICE_NOT_RECOGNISED
    assert bot.asked == ["俺想借点钱"]


def test_media_get_a_helpful_answer_in_safe_mode(serve_webhook, bot):
    user = serve_webhook(wechat_aes_key=KEY)
    body = user._xml(
        "location", [("Location_X", "32.1"), ("Location_Y", "120.2"), ("Scale", 15), ("Label", "黄桥村")], 880001
    )
    reply = user.deliver(body)
    assert reply.encrypted and reply.content == NOT_UNDERSTOOD_MEDIA and bot.asked == []


def test_subscribe_greets_through_the_bot_and_records_the_follower(serve_webhook, bot, demo_settings):
    user = serve_webhook(openid="o_new_follower")
    assert user.send_event("subscribe").content == "已收到：/greet"
    assert follower(demo_settings, "o_new_follower") == (True, None)


def test_station_code_binds_the_follower_to_the_station_officer(serve_webhook, bot, demo_settings):
    user = serve_webhook(openid="o_station_scanner")
    reply = user.scan_qrcode(scene("station", "HQ001"), following=False)
    assert "黄桥村惠农服务站" in reply.content and "李经理" in reply.content
    assert follower(demo_settings, "o_station_scanner") == (True, "HQ001")
    # A hand-off for this non-customer goes to the station's officer.
    with unit_of_work(demo_settings.database_url) as s:
        hand_off, _ = request_hand_off(s, "o_station_scanner", "customer_request")
        assert hand_off.officer.username == "officer01"
    assert bot.asked == []


def test_scan_of_an_unknown_code_says_so(serve_webhook, bot):
    user = serve_webhook()
    assert user.scan_qrcode(scene("station", "NOPE")).content == UNKNOWN_QR_CODE
    assert user.scan_qrcode("something-else").content == UNKNOWN_QR_CODE
    assert bot.asked == []


def test_authorization_code_answers_with_the_party_link(serve_webhook, bot, demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        applicant = by_openid(s, "o_demo_zhangjianguo")
        issued = issue(s, applicant, applicant, "applicant", "bot", timedelta(minutes=30))
        token = issued.token
    user = serve_webhook(openid="o_demo_zhangjianguo")
    reply = user.scan_qrcode(scene("auth", token))
    assert f"/auth/{token}" in reply.content and reply.content.startswith("张**您好") and "张建国" not in reply.content
    assert "授权码无效" in user.scan_qrcode(scene("auth", "x" * 32)).content


def test_menu_clicks_ask_the_bot_and_views_need_no_answer(serve_webhook, bot):
    user = serve_webhook()
    assert user.send_event("CLICK", "CREDIT_LINE").content == "已收到：/ask_credit_line"
    assert user.send_event("CLICK", "NO_SUCH_BUTTON").content == UNKNOWN_MENU
    assert user.send_event("VIEW", "https://bank.example/h5").empty
    assert bot.asked == [MENU_INTENTS["CREDIT_LINE"]]


def test_unsubscribe_marks_the_follower_and_keeps_the_customer(serve_webhook, bot, demo_settings):
    user = serve_webhook()
    user.send_event("subscribe")
    assert user.send_event("unsubscribe").empty
    assert follower(demo_settings, "o_demo_zhangjianguo")[0] is False
    with unit_of_work(demo_settings.database_url) as s:
        assert by_openid(s, "o_demo_zhangjianguo").name == "张建国"


def test_open_hand_off_sends_messages_to_the_officer_until_closed(serve_webhook, bot, demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        request_hand_off(s, "o_demo_zhangjianguo", "customer_request")
    user = serve_webhook()
    assert user.send_text("我要贷30万，什么时候能批").content == PASSED_TO_OFFICER
    assert user.send_text("在吗").empty  # told once, not after every message
    body = user.text_xml("还要带什么材料")
    assert user.deliver(body).empty and user.deliver(body).empty  # WeChat's retry is stored once
    assert user.deliver(user._xml("image", [("PicUrl", "http://img/1.jpg"), ("MediaId", "m1")], 880002)).empty
    assert bot.asked == []
    with unit_of_work(demo_settings.database_url) as s:
        hand_off = open_hand_off(s, "o_demo_zhangjianguo")
        kept = s.scalars(
            select(ConversationMessage.body)
            .where(ConversationMessage.hand_off_id == hand_off.id)
            .order_by(ConversationMessage.id)
        ).all()
        assert kept == ["我要贷30万，什么时候能批", "在吗", "还要带什么材料", "[图片] http://img/1.jpg"]
        officer = s.scalar(select(Officer).where(Officer.username == "officer01"))
        close_hand_off(s, hand_off, f"officer:{officer.username}")
    assert user.send_text("谢谢").content == "已收到：谢谢"
    assert bot.asked == ["谢谢"]


def test_station_qr_code_is_made_through_the_wechat_api(demo_settings, tmp_path, monkeypatch, capsys):
    import requests

    from conversation.followers import main
    from emulators import serve_in_thread
    from emulators.wechat.api import create_app as create_wechat_emulator

    with serve_in_thread(create_wechat_emulator(demo_settings)) as base:
        for name, value in (
            ("DATABASE_URL", demo_settings.database_url),
            ("REDIS_URL", demo_settings.redis_url),
            ("WECHAT_API_BASE", base),
            ("SECRET_KEY", TEST_SECRET),
        ):
            monkeypatch.setenv(name, value)
        out = tmp_path / "hq001.png"
        assert main(["station-qr", "HQ001", "--out", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG" and "黄桥村惠农服务站" in capsys.readouterr().out
        made = requests.get(f"{base}/_emulator/qrcodes", timeout=5).json()
        assert [q.get("scene_str") for q in made] == ["station:HQ001"]
        assert main(["station-qr", "NOPE", "--out", str(tmp_path / "x.png")]) == 1
        assert "no service station" in capsys.readouterr().err
