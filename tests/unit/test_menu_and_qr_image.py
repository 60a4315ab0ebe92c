"""The authorization QR code sent as an image message, and the Official Account's menu
published from conversation/menu.yml, against the WeChat API emulator."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from rq import Queue

from auth_flow.qr import send_qr_image
from clients.wechat import WeChatApi
from conversation import __main__ as command
from conversation.menu import MenuError, load_menu, publish
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_emulator
from sunshine.clock import utcnow
from sunshine.jobs import per_process, queue_name
from sunshine.redis import connect
from tests.unit.bot_trackers import DEMO_OPENID
from tests.unit.test_authorization_action import apply_for_zhang, ask, tokens


@pytest.fixture
def wechat(demo_settings):
    per_process.cache_clear()
    with serve_in_thread(wechat_emulator(demo_settings)) as base:
        yield replace(demo_settings, wechat_api_base=base), base
    per_process.cache_clear()


def emulator(base, what, **params):
    return requests.get(f"{base}/_emulator/{what}", params=params, timeout=5).json()


# -- the QR code as an image -------------------------------------------------------------
def test_the_qr_code_goes_as_an_image_uploaded_once(wechat):
    settings, base = wechat
    expires = (utcnow() + timedelta(minutes=30)).isoformat()
    assert send_qr_image(DEMO_OPENID, "tok-1", expires, settings)
    assert send_qr_image(DEMO_OPENID, "tok-1", expires, settings)  # again: the cached media_id
    media = emulator(base, "media")
    assert len(media) == 1 and media[0]["type"] == "image"
    sent = emulator(base, "messages", touser=DEMO_OPENID)
    assert [(m["msgtype"], m["payload"]["media_id"]) for m in sent] == [("image", media[0]["media_id"])] * 2
    assert not send_qr_image(DEMO_OPENID, "tok-2", (utcnow() - timedelta(seconds=1)).isoformat(), settings)


def test_a_refused_image_leaves_the_link(wechat):
    settings, base = wechat
    requests.post(f"{base}/_emulator/window", json={"touser": DEMO_OPENID, "silent_hours": 49}, timeout=5)
    assert not send_qr_image(DEMO_OPENID, "tok-1", (utcnow() + timedelta(minutes=5)).isoformat(), settings)


def test_the_emulator_refuses_an_image_never_uploaded_and_a_non_image(wechat):
    settings, base = wechat
    api = WeChatApi.from_settings(settings)
    with pytest.raises(Exception, match="40007"):
        api.send_image(DEMO_OPENID, "never-uploaded")
    with pytest.raises(Exception, match="40005"):
        api.upload_image(b"not a picture")


def test_the_action_queues_each_partys_qr_image_after_its_answer(bank_env, redis_url):
    apply_for_zhang(bank_env)
    text = ask()
    _, spouse = tokens(text)
    queue = Queue(queue_name(DEMO_OPENID, 4), connection=connect(redis_url))
    images = [j for j in queue.jobs if j.func_name == "auth_flow.qr.send_qr_image"]
    assert [j.args[:2] for j in images] == [(DEMO_OPENID, spouse)]
    assert "二维码图片随后发给您" in text and "qr.png" in text  # the link stays


# -- the menu --------------------------------------------------------------------------
def test_the_menu_is_published_once(wechat):
    settings, base = wechat
    api = WeChatApi.from_settings(settings)
    menu = load_menu(settings)
    assert publish(api, menu) is True
    shown = emulator(base, "menu")["menu"]["button"]
    assert [b["name"] for b in shown] == ["我要贷款", "我的贷款", "找客户经理"]
    mini = shown[1]["sub_button"][2]
    assert (mini["type"], mini["appid"], mini["pagepath"]) == ("miniprogram", settings.wxa_appid, "pages/index/index")
    assert publish(api, menu) is False  # the same menu: nothing sent
    creates = [c for c in emulator(base, "calls") if c["path"] == "/cgi-bin/menu/create"]
    assert len(creates) == 1


def test_the_command_publishes_and_refuses_a_bad_file(wechat, monkeypatch, tmp_path: Path, capsys):
    settings, base = wechat
    monkeypatch.setenv("WECHAT_API_BASE", base)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert command.main(["menu", "publish"]) == 0
    assert command.main(["menu", "publish"]) == 0
    assert capsys.readouterr().out.splitlines() == ["菜单已发布", "菜单与微信上的一致，未改动"]

    bad = tmp_path / "menu.yml"
    bad.write_text("button:\n  - {type: click, name: 乱按, key: NOT_A_KEY}\n", encoding="utf-8")
    assert command.main(["menu", "publish", "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "菜单文件有误，未发布" in err and "第1个菜单「乱按」" in err and "APPLY_LOAN" in err


@pytest.mark.parametrize(
    ("menu", "complaint"),
    [
        ("button: []", "1到3个一级菜单"),
        ("button: [" + ", ".join(["{type: click, name: a, key: HUMAN}"] * 4) + "]", "1到3个一级菜单"),
        (
            "button: [{name: 贷款, sub_button: [" + ", ".join(["{type: click, name: a, key: HUMAN}"] * 6) + "]}]",
            "1到5个",
        ),
        ("button: [{type: click, name: 一二三四五六, key: HUMAN}]", "名称太长"),
        ("button: [{type: miniprogram, name: 小程序, url: 'http://x/'}]", "pagepath"),
        ("button: [{type: view, name: 网点, url: 'ftp://x'}]", "http(s)"),
        ("button: [{type: scancode_push, name: 扫码, key: HUMAN}]", "type 应为"),
        ("button: [", "无法读取"),
    ],
)
def test_a_bad_menu_is_refused_with_what_is_wrong(demo_settings, tmp_path: Path, menu, complaint):
    path = tmp_path / "menu.yml"
    path.write_text(menu, encoding="utf-8")
    with pytest.raises(MenuError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        load_menu(demo_settings, path)


def test_the_emulator_holds_wechats_menu_limits(wechat):
    settings, _ = wechat
    api = WeChatApi.from_settings(settings)
    with pytest.raises(Exception, match="40016"):
        api.create_menu({"button": [{"type": "click", "name": "a", "key": "K"}] * 4})
    with pytest.raises(Exception, match="40018"):
        api.create_menu({"button": [{"type": "click", "name": "一二三四五六", "key": "K"}]})
    assert api.current_menu() is None  # nothing published
