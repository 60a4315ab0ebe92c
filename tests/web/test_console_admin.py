"""Administration in the console through Flask's test client on a real database and Redis:
every page for a supervisor, every refusal for an officer (403, recorded, nothing changed),
first passwords shown once, sessions ended, stations' QR codes from the WeChat emulator."""

import re

import pytest
import requests
from sqlalchemy import func, select

from lending.customers import by_id_number
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, Officer, OfficerSession, ServiceStation, WatchListEntry
from tests.conftest import TEST_SECRET
from tests.web.test_console_sessions import is_in, log_in, logged_in

ZHANG = "321283197503120119"
PAGES = ["/console/admin/officers", "/console/admin/stations", "/console/admin/customers", "/console/admin/watch-list"]


def text(resp) -> str:
    return resp.get_data(as_text=True)


def ids(settings):
    with unit_of_work(settings.database_url) as s:
        return {o.username: o.id for o in s.scalars(select(Officer).order_by(Officer.id))}


def audits(settings, action):
    with unit_of_work(settings.database_url) as s:
        return [
            (e.actor, e.detail)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        ]


@pytest.fixture
def boss(make_client):
    return logged_in(make_client, "supervisor01")


def first_password(resp) -> str:
    assert resp.status_code == 200 and "只显示这一次" in text(resp)
    assert resp.headers["Cache-Control"] == "no-store"  # not kept by the browser or a proxy
    return re.search(r'class="first-password">([^<]+)<', text(resp)).group(1)


def test_an_officer_is_refused_every_page_and_change_recorded_nothing_changed(make_client, demo_settings):
    me = logged_in(make_client)
    assert "/console/admin/officers" not in text(me.get("/console"))  # no 管理 link for an officer
    officer_ids = ids(demo_settings)
    posts = {
        "/console/admin/officers": {"username": "mole", "display_name": "内鬼", "role": "supervisor"},
        f"/console/admin/officers/{officer_ids['supervisor01']}/deactivate": {},
        f"/console/admin/officers/{officer_ids['supervisor01']}/reactivate": {},
        f"/console/admin/officers/{officer_ids['supervisor01']}/password": {},
        "/console/admin/stations": {"code": "HQ009", "name": "站", "village": "村"},
        "/console/admin/stations/1/officer": {"officer_id": officer_ids["officer01"]},
        "/console/admin/customers/officer": {"id_number": ZHANG, "officer_id": officer_ids["officer01"]},
        "/console/admin/villages/officer": {"village": "黄桥村", "officer_id": officer_ids["officer01"]},
        "/console/admin/watch-list": {"id_number": ZHANG, "reason": "试试"},
        "/console/admin/watch-list/1/remove": {"reason": "试试"},
    }
    for page in [*PAGES, "/console/admin/stations/1/qr"]:
        resp = me.get(page)
        assert resp.status_code == 403 and "只有主管可以进行管理操作" in text(resp), page
        assert resp.headers["Cache-Control"] == "no-store"
    for url, form in posts.items():
        resp = me.post(url, data=dict(form, csrf=me.csrf))
        assert resp.status_code == 403 and "只有主管可以进行管理操作" in text(resp), url
    refused = audits(demo_settings, "admin.refused")
    assert len(refused) == 5 + len(posts) and {actor for actor, _ in refused} == {"officer:officer01"}
    assert {"doing": "console.admin_officer_create"} in [d for _, d in refused]
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(Officer)) == 2
        assert s.scalar(select(Officer.active).where(Officer.username == "supervisor01"))
        assert s.scalar(select(func.count()).select_from(ServiceStation)) == 2
        assert s.scalar(select(func.count()).select_from(WatchListEntry)) == 0
        assert by_id_number(s, TEST_SECRET, ZHANG).officer.username == "officer01"
    assert is_in(logged_in(make_client, "supervisor01"))  # the supervisor's password is unchanged


def test_admin_pages_need_a_login_and_their_forms_a_csrf_token(make_client, boss):
    resp = make_client().get("/console/admin/officers")
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    resp = boss.post("/console/admin/officers", data={"username": "wang", "display_name": "王", "role": "officer"})
    assert resp.status_code == 400 and "表单已过期" in text(resp)


def test_a_supervisor_sees_every_page(boss):
    assert ">管理</a>" in text(boss.get("/console"))
    pages = [text(boss.get(page)) for page in PAGES]
    assert "officer01" in pages[0] and "李经理" in pages[0] and "本人" in pages[0]
    assert "黄桥村惠农服务站" in pages[1] and "打印二维码" in pages[1]
    assert "黄桥村" in pages[2] and "李经理" in pages[2]
    assert "名单是空的" in pages[3]


def test_a_new_officer_sees_the_first_password_once_and_must_change_it(make_client, demo_settings, boss):
    form = {"username": "wang.xm", "display_name": "王小明", "role": "officer", "wecom_userid": "wang.xm"}
    password = first_password(boss.post("/console/admin/officers", data=dict(form, csrf=boss.csrf)))
    assert password not in text(boss.get("/console/admin/officers"))  # shown once only
    assert password not in str(audits(demo_settings, "officer.created"))
    newcomer = make_client()
    resp = log_in(newcomer, "wang.xm", password)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/password")
    again = boss.post("/console/admin/officers", data=dict(form, csrf=boss.csrf))
    assert again.status_code == 400 and "用户名 wang.xm 已经有人用了" in text(again)
    assert 'value="王小明"' in text(again)  # the form keeps what was typed
    bad = boss.post("/console/admin/officers", data=dict(form, username="王", csrf=boss.csrf))
    assert bad.status_code == 400 and "用户名应为3至32位小写字母" in text(bad)


def test_deactivating_an_officer_ends_their_sessions_and_reactivating_does_not_revive_them(
    make_client, demo_settings, boss
):
    me = logged_in(make_client)
    officer_id = ids(demo_settings)["officer01"]
    resp = boss.post(f"/console/admin/officers/{officer_id}/deactivate", data={"csrf": boss.csrf})
    assert resp.status_code == 303
    assert "已停用李经理的账号" in text(boss.get(resp.headers["Location"]))
    assert not is_in(me)
    assert log_in(make_client(), "officer01", "sunshine-demo").status_code == 401
    with unit_of_work(demo_settings.database_url) as s:
        ended = s.scalars(
            select(OfficerSession.end_reason).where(OfficerSession.officer_id == officer_id).order_by(OfficerSession.id)
        ).all()
        assert ended == ["deactivated"]
    again = boss.post(f"/console/admin/officers/{officer_id}/deactivate", data={"csrf": boss.csrf})
    assert again.status_code == 400 and "李经理的账号已经停用" in text(again)
    assert boss.post(f"/console/admin/officers/{officer_id}/reactivate", data={"csrf": boss.csrf}).status_code == 303
    assert not is_in(me)  # the old session stays ended
    assert is_in(logged_in(make_client))
    own = boss.post(
        f"/console/admin/officers/{ids(demo_settings)['supervisor01']}/deactivate", data={"csrf": boss.csrf}
    )
    assert own.status_code == 400 and "不能停用自己的账号" in text(own)


def test_a_password_reset_shows_a_new_first_password_and_ends_every_session(make_client, demo_settings, boss):
    me = logged_in(make_client)
    officer_id = ids(demo_settings)["officer01"]
    password = first_password(boss.post(f"/console/admin/officers/{officer_id}/password", data={"csrf": boss.csrf}))
    assert "其原来的登录已全部退出" in text(
        boss.post(f"/console/admin/officers/{officer_id}/password", data={"csrf": boss.csrf})
    )
    assert not is_in(me)
    assert log_in(make_client(), "officer01", password).status_code == 401  # the second reset replaced it
    missing = boss.post("/console/admin/officers/999/password", data={"csrf": boss.csrf})
    assert missing.status_code == 400 and "没有这位客户经理" in text(missing)


def test_stations_are_created_given_to_an_officer_and_refused_with_reasons(demo_settings, boss):
    officer_ids = ids(demo_settings)
    form = {"code": "hq003", "name": "黄桥村二组服务站", "village": "黄桥村", "officer_id": "", "csrf": boss.csrf}
    resp = boss.post("/console/admin/stations", data=form)
    assert resp.status_code == 303
    assert "已新建服务站黄桥村二组服务站（HQ003）" in text(boss.get(resp.headers["Location"]))
    dup = boss.post("/console/admin/stations", data=form)
    assert (
        dup.status_code == 400 and "服务站编号 HQ003 已经有了" in text(dup) and 'value="黄桥村二组服务站"' in text(dup)
    )
    with unit_of_work(demo_settings.database_url) as s:
        station_id = s.scalar(select(ServiceStation.id).where(ServiceStation.code == "HQ003"))
    url = f"/console/admin/stations/{station_id}/officer"
    resp = boss.post(url, data={"officer_id": officer_ids["officer01"], "csrf": boss.csrf})
    assert "黄桥村二组服务站改由李经理负责" in text(boss.get(resp.headers["Location"]))
    same = boss.post(url, data={"officer_id": officer_ids["officer01"], "csrf": boss.csrf})
    assert same.status_code == 400 and "已经由李经理负责" in text(same)
    nobody = boss.post(url, data={"officer_id": "", "csrf": boss.csrf})
    assert nobody.status_code == 400 and "没有这位客户经理" in text(nobody)
    assert audits(demo_settings, "station.officer_assigned") == [
        ("officer:supervisor01", {"before": None, "after": "officer01"})
    ]


def test_a_stations_printable_qr_code_is_a_permanent_code_from_wechat(make_client, emulated):
    settings, base, _ = emulated
    boss = logged_in(lambda: make_client(wechat_api_base=base), "supervisor01")
    page = text(boss.get("/console/admin/stations/1/qr"))
    assert "黄桥村惠农服务站" in page and "data:image/png;base64,iVBORw0KGgo" in page and "data-print" in page
    assert "由本站的李经理为您服务" in page
    made = requests.get(f"{base}/_emulator/qrcodes", timeout=5).json()
    assert [(q["action_name"], q["scene_str"]) for q in made] == [("QR_LIMIT_STR_SCENE", "station:HQ001")]
    assert boss.get("/console/admin/stations/999/qr").status_code == 404


def test_a_stations_qr_code_when_wechat_is_unreachable_says_so(boss):
    resp = boss.get("/console/admin/stations/1/qr")
    assert resp.status_code == 502 and "微信接口暂时生成不了二维码" in text(resp)


def test_customers_are_given_to_an_officer_one_by_id_number_or_a_village(demo_settings, boss):
    officer_ids = ids(demo_settings)
    resp = boss.post(
        "/console/admin/customers/officer",
        data={"id_number": ZHANG, "officer_id": officer_ids["supervisor01"], "csrf": boss.csrf},
    )
    assert "张建国（3212**********0119）改由周主任负责" in text(boss.get(resp.headers["Location"]))
    page = text(boss.get("/console/admin/customers"))
    assert "周主任 1人" in page
    bad = boss.post(
        "/console/admin/customers/officer",
        data={"id_number": ZHANG[:-1] + "8", "officer_id": officer_ids["officer01"], "csrf": boss.csrf},
    )
    assert bad.status_code == 400 and "身份证号校验位不对" in text(bad)
    resp = boss.post(
        "/console/admin/villages/officer",
        data={"village": "黄桥村", "officer_id": officer_ids["officer01"], "csrf": boss.csrf},
    )
    assert "黄桥村：1位客户换了客户经理" in text(boss.get(resp.headers["Location"]))
    unknown = boss.post(
        "/console/admin/villages/officer",
        data={"village": "柳树村", "officer_id": officer_ids["officer01"], "csrf": boss.csrf},
    )
    assert unknown.status_code == 400 and "没有柳树村的客户" in text(unknown)
    assert [d["after"] for _, d in audits(demo_settings, "customer.officer_assigned")] == ["supervisor01", "officer01"]


def test_the_watch_list_adds_and_removes_with_reasons(demo_settings, boss):
    no_reason = boss.post("/console/admin/watch-list", data={"id_number": ZHANG, "reason": " ", "csrf": boss.csrf})
    assert no_reason.status_code == 400 and "请写明原因" in text(no_reason)
    assert ZHANG not in text(no_reason)  # the ID number typed is not shown again
    resp = boss.post("/console/admin/watch-list", data={"id_number": ZHANG, "reason": "涉诉未结", "csrf": boss.csrf})
    page = text(boss.get(resp.headers["Location"]))
    assert "已将 3212**********0119 加入关注名单" in page and "张建国" in page and "涉诉未结" in page
    assert ZHANG not in page
    with unit_of_work(demo_settings.database_url) as s:
        entry_id = s.scalar(select(WatchListEntry.id))
    url = f"/console/admin/watch-list/{entry_id}/remove"
    blank = boss.post(url, data={"reason": "", "csrf": boss.csrf})
    assert blank.status_code == 400 and "请写明原因" in text(blank)
    page = text(boss.get(boss.post(url, data={"reason": "已结案", "csrf": boss.csrf}).headers["Location"]))
    assert "已将 3212**********0119 移出关注名单" in page and "名单是空的" in page and "已结案" in page  # 最近变更
    gone = boss.post(url, data={"reason": "已结案", "csrf": boss.csrf})
    assert gone.status_code == 400 and "可能已被移除" in text(gone)
