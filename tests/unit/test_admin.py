"""Administration rules (handoff.admin) on a real database: officers' accounts, stations,
customers to officers, the watch list, and the village file's officer column; every change
audited, everyone but a supervisor refused (recorded) with nothing changed."""

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from conversation.followers import followed, station_by_code
from handoff import admin
from handoff import service as h
from lending.__main__ import main
from lending.customers import by_id_number
from lending.risk import watch
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from sunshine.models import (
    AuditEntry,
    Customer,
    HandOff,
    Officer,
    OfficerSession,
    ServiceStation,
    WatchListEntry,
)
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import HEADER, person_id

ZHANG = "321283197503120119"  # 张建国, 黄桥村, officer01's (demo)


def officer(s, username):
    return s.scalar(select(Officer).where(Officer.username == username))


def audits(s, action):
    return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def session_of(s, who, token):
    s.add(OfficerSession(token_hash=token * 64, officer_id=who.id, created_at=utcnow(), last_seen_at=utcnow()))


def test_a_new_officer_gets_a_first_password_kept_only_hashed_and_must_change_it(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        new, password = admin.create_officer(s, officer(s, "supervisor01"), " Wang.Xm ", "王小明", "officer", "wang.xm")
    assert len(password) == admin.FIRST_PASSWORD_LENGTH and not set(password) & set("0O1lI")
    with unit_of_work(demo_db_url) as s:
        new = officer(s, "wang.xm")
        assert (new.display_name, new.role, new.wecom_userid, new.active) == ("王小明", "officer", "wang.xm", True)
        assert new.must_change_password and check_password_hash(new.password_hash, password)
        (entry,) = audits(s, "officer.created")
        assert entry.actor == "officer:supervisor01" and entry.detail["username"] == "wang.xm"
        assert password not in str(entry.detail)
    with unit_of_work(demo_db_url) as s:  # another one gets another password
        assert admin.create_officer(s, officer(s, "supervisor01"), "zhao", "赵", "supervisor")[1] != password


@pytest.mark.parametrize(
    "fields, message",
    [
        (("x", "王", "officer", ""), "用户名应为3至32位小写字母"),
        (("9abc", "王", "officer", ""), "以字母开头"),
        (("OFFICER01", "王", "officer", ""), "用户名 officer01 已经有人用了"),
        (("wang", "  ", "officer", ""), "请填写姓名"),
        (("wang", "王" * 33, "officer", ""), "姓名不能超过32个字"),
        (("wang", "王", "admin", ""), "角色应为客户经理或主管"),
        (("wang", "王", "officer", "has space"), "企业微信账号应为"),
    ],
)
def test_a_bad_new_officer_is_refused_and_nothing_is_created(demo_db_url, fields, message):
    with unit_of_work(demo_db_url) as s:
        with pytest.raises(admin.AdminError, match=message):
            admin.create_officer(s, officer(s, "supervisor01"), *fields)
        assert s.scalar(select(func.count()).select_from(Officer)) == 2 and not audits(s, "officer.created")


def test_an_officer_is_refused_every_administration_and_the_refusal_is_recorded(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        first_entry = s.scalar(select(func.max(AuditEntry.id)))
        me, boss = officer(s, "officer01"), officer(s, "supervisor01")
        station = station_by_code(s, "HQ001")
        zhang = by_id_number(s, TEST_SECRET, ZHANG)
        attempts = [
            lambda: admin.officers(s, me),
            lambda: admin.create_officer(s, me, "mole", "内鬼", "supervisor"),
            lambda: admin.deactivate(s, me, boss.id),
            lambda: admin.reactivate(s, me, boss.id),
            lambda: admin.reset_password(s, me, boss.id),
            lambda: admin.stations(s, me),
            lambda: admin.create_station(s, me, "HQ009", "站", "村", me.id),
            lambda: admin.assign_station(s, me, station.id, me.id),
            lambda: admin.villages(s, me),
            lambda: admin.assign_customer(s, me, zhang.id, me.id),
            lambda: admin.assign_village(s, me, "黄桥村", me.id),
            lambda: admin.watch_list(s, me),
            lambda: admin.add_to_watch_list(s, me, TEST_SECRET, ZHANG, "试试"),
            lambda: admin.remove_from_watch_list(s, me, 1, "试试"),
        ]
        for attempt in attempts:
            with pytest.raises(admin.NotSupervisor, match="只有主管可以进行管理操作"):
                attempt()
    with unit_of_work(demo_db_url) as s:
        refused = audits(s, "admin.refused")
        assert len(refused) == len(attempts) and {e.actor for e in refused} == {"officer:officer01"}
        assert refused[1].detail == {"doing": "officers.create"}
        assert officer(s, "mole") is None and officer(s, "supervisor01").active
        assert s.scalar(select(func.count()).select_from(WatchListEntry)) == 0
        assert s.scalar(select(func.count()).select_from(ServiceStation)) == 2
        assert s.scalar(select(func.count()).where(AuditEntry.id > first_entry)) == len(attempts)  # nothing else


def test_a_stopped_supervisor_is_refused_too(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        boss = officer(s, "supervisor01")
        boss.active = False
        with pytest.raises(admin.NotSupervisor):
            admin.officers(s, boss)


def test_deactivation_ends_sessions_returns_hand_offs_and_new_ones_pass_the_officer_over(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        session_of(s, officer(s, "officer01"), "a")
        session_of(s, officer(s, "officer01"), "b")
        hand_off, _ = h.request_hand_off(s, "o_demo_zhangjianguo", "customer_request")
        assert hand_off.officer.username == "officer01"
        hand_off_id = hand_off.id
    with unit_of_work(demo_db_url) as s:
        admin.deactivate(s, officer(s, "supervisor01"), officer(s, "officer01").id)
    with unit_of_work(demo_db_url) as s:
        assert not officer(s, "officer01").active
        ends = s.execute(select(OfficerSession.end_reason, OfficerSession.ended_at)).all()
        assert [reason for reason, _ in ends] == ["deactivated", "deactivated"] and all(at for _, at in ends)
        moved = s.get(HandOff, hand_off_id)
        assert (moved.officer_id, moved.status) == (None, "open")
        (entry,) = audits(s, "officer.deactivated")
        assert entry.detail == {"sessions_ended": 2, "hand_offs_to_branch_queue": 1}
        h.close_hand_off(s, moved, "test")
    with unit_of_work(demo_db_url) as s:  # the customer's next hand-off goes to the branch queue
        assert h.request_hand_off(s, "o_demo_zhangjianguo", "customer_request")[0].officer_id is None
        followed(s, "o_station_scan", station_by_code(s, "HQ001"))  # officer01's station
        assert h.request_hand_off(s, "o_station_scan", "customer_request")[0].officer_id is None
    with unit_of_work(demo_db_url) as s:
        boss = officer(s, "supervisor01")
        with pytest.raises(admin.AdminError, match="账号已经停用"):
            admin.deactivate(s, boss, officer(s, "officer01").id)
        with pytest.raises(admin.AdminError, match="不能停用自己的账号"):
            admin.deactivate(s, boss, boss.id)
        admin.reactivate(s, boss, officer(s, "officer01").id)
    with unit_of_work(demo_db_url) as s:
        assert officer(s, "officer01").active and len(audits(s, "officer.reactivated")) == 1
        # The old sessions stay ended: the officer logs in again.
        assert s.scalar(select(func.count()).where(OfficerSession.ended_at.is_(None))) == 0
        with pytest.raises(admin.AdminError, match="没有停用"):
            admin.reactivate(s, officer(s, "supervisor01"), officer(s, "officer01").id)


def test_a_password_reset_gives_a_new_first_password_and_ends_every_session(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        session_of(s, officer(s, "officer01"), "c")
    with unit_of_work(demo_db_url) as s:
        _, password = admin.reset_password(s, officer(s, "supervisor01"), officer(s, "officer01").id)
    with unit_of_work(demo_db_url) as s:
        me = officer(s, "officer01")
        assert check_password_hash(me.password_hash, password) and not check_password_hash(
            me.password_hash, "sunshine-demo"
        )
        assert me.must_change_password
        assert s.scalar(select(OfficerSession.end_reason)) == "password_reset"
        assert audits(s, "officer.password_reset")[0].detail == {"sessions_ended": 1}
        boss = officer(s, "supervisor01")
        with pytest.raises(admin.AdminError, match="不能在这里重置自己的账号"):
            admin.reset_password(s, boss, boss.id)
        with pytest.raises(admin.AdminError, match="没有这位客户经理"):
            admin.reset_password(s, boss, 999)


def test_stations_are_created_and_given_to_officers_with_before_and_after(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        boss, me = officer(s, "supervisor01"), officer(s, "officer01")
        station = admin.create_station(s, boss, "hq003", "黄桥村二组服务站", "黄桥村", None)
        assert (station.code, station.officer_id) == ("HQ003", None)
        for fields, message in [
            (("H", "站", "村", None), "服务站编号应为"),
            (("HQ001", "站", "村", None), "服务站编号 HQ001 已经有了"),
            (("HQ004", "", "村", None), "请填写服务站名称"),
            (("HQ004", "站", "村", 999), "没有这位客户经理"),
        ]:
            with pytest.raises(admin.AdminError, match=message):
                admin.create_station(s, boss, *fields)
        admin.assign_station(s, boss, station.id, me.id)
        with pytest.raises(admin.AdminError, match="已经由李经理负责"):
            admin.assign_station(s, boss, station.id, me.id)
        admin.assign_station(s, boss, station.id, boss.id)
    with unit_of_work(demo_db_url) as s:
        assert station_by_code(s, "HQ003").officer.username == "supervisor01"
        assert [e.detail for e in audits(s, "station.officer_assigned")] == [
            {"before": None, "after": "officer01"},
            {"before": "officer01", "after": "supervisor01"},
        ]
        assert audits(s, "station.created")[0].detail["code"] == "HQ003"
        assert s.scalar(select(func.count()).select_from(ServiceStation)) == 3


def test_customers_are_given_to_an_officer_one_or_a_village_at_once(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        boss, me = officer(s, "supervisor01"), officer(s, "officer01")
        zhang = admin.customer_by_id_number(s, TEST_SECRET, ZHANG)
        admin.assign_customer(s, boss, zhang.id, boss.id)
        with pytest.raises(admin.AdminError, match="已经由周主任负责"):
            admin.assign_customer(s, boss, zhang.id, boss.id)
        with pytest.raises(admin.AdminError, match="身份证号校验位不对"):
            admin.customer_by_id_number(s, TEST_SECRET, ZHANG[:-1] + "8")
        with pytest.raises(admin.AdminError, match="没有这个身份证号的客户"):
            admin.customer_by_id_number(s, TEST_SECRET, person_id("19900101"))
        villagers = s.scalar(select(func.count()).where(Customer.village == "黄桥村"))
        (village,) = [v for v in admin.villages(s, boss) if v.name == "黄桥村"]
        assert village.customers == villagers and village.by_officer == {"周主任": 1, "李经理": villagers - 1}
    with unit_of_work(demo_db_url) as s:
        assert admin.assign_village(s, officer(s, "supervisor01"), "黄桥村", me.id) == 1  # only 张建国 changes
        assert admin.assign_village(s, officer(s, "supervisor01"), "黄桥村", me.id) == 0
        with pytest.raises(admin.AdminError, match="没有柳树村的客户"):
            admin.assign_village(s, officer(s, "supervisor01"), "柳树村", me.id)
    with unit_of_work(demo_db_url) as s:
        assert [(e.subject_id, e.detail) for e in audits(s, "customer.officer_assigned")] == [
            (str(zhang.id), {"before": "officer01", "after": "supervisor01"}),
            (str(zhang.id), {"before": "supervisor01", "after": "officer01", "village": "黄桥村"}),
        ]
        assert by_id_number(s, TEST_SECRET, ZHANG).officer.username == "officer01"


def test_the_watch_list_takes_a_reason_to_add_and_to_remove(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        boss = officer(s, "supervisor01")
        for id_number, reason, message in [
            (ZHANG, "  ", "请写明原因"),
            (ZHANG, "因" * 201, "原因不能超过200个字"),
            ("12345", "涉诉", "身份证号应为18位"),
        ]:
            with pytest.raises(admin.AdminError, match=message):
                admin.add_to_watch_list(s, boss, TEST_SECRET, id_number, reason)
        entry = admin.add_to_watch_list(s, boss, TEST_SECRET, ZHANG.lower(), "涉诉未结")
        with pytest.raises(admin.AdminError, match=r"3212\*+0119 已在关注名单上（原因：涉诉未结）"):
            admin.add_to_watch_list(s, boss, TEST_SECRET, ZHANG, "再来一次")
        assert [e.id for e in admin.watch_list(s, boss)] == [entry.id]
        entry_id = entry.id
    with unit_of_work(demo_db_url) as s:
        boss = officer(s, "supervisor01")
        with pytest.raises(admin.AdminError, match="请写明原因"):
            admin.remove_from_watch_list(s, boss, entry_id, "")
        assert admin.remove_from_watch_list(s, boss, entry_id, "已结案") == "3212**********0119"
        with pytest.raises(admin.AdminError, match="可能已被移除"):
            admin.remove_from_watch_list(s, boss, entry_id, "已结案")
    with unit_of_work(demo_db_url) as s:
        assert admin.watch_list(s, officer(s, "supervisor01")) == []
        (removed,) = audits(s, "watch_list.removed")
        assert removed.actor == "officer:supervisor01"
        assert {k: removed.detail[k] for k in ("id_masked", "reason", "added_reason", "added_by")} == {
            "id_masked": "3212**********0119",
            "reason": "已结案",
            "added_reason": "涉诉未结",
            "added_by": "officer:supervisor01",
        }


def test_watch_stays_idempotent_for_the_risk_rules(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        first, created = watch(s, TEST_SECRET, ZHANG, "涉诉未结", "supervisor01")
        again, created_again = watch(s, TEST_SECRET, ZHANG, "again", "supervisor01")
        assert created and not created_again and again.id == first.id and again.reason == "涉诉未结"


# -- the village file's officer column ------------------------------------------------------


def village_file(tmp_path, rows, name="village.csv"):
    path = tmp_path / name
    path.write_text(HEADER.rstrip("\n") + ",officer\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def row(id_number, officer_name, spouse=""):
    members = f"spouse:配偶:{spouse}:" if spouse else ""
    return f"柳树村,户主{id_number[-4:]},{id_number},,farmer,50000,2027-12-31,{members},,{officer_name}"


def test_the_village_file_gives_households_to_the_officer_it_names(demo_settings, tmp_path, capsys):
    head, spouse, other = person_id("19700101", seq=1), person_id("19720202", seq=2), person_id("19800303", seq=3)
    path = village_file(tmp_path, [row(head, "officer01", spouse), row(other, "")])
    assert main(["import-credit-lines", str(path)], settings=demo_settings) == 0
    assert "导入完成：新增2户，更新0户，未变0户，有误0行，2人换了客户经理。" in capsys.readouterr().out
    with unit_of_work(demo_settings.database_url) as s:
        assert by_id_number(s, TEST_SECRET, head).officer.username == "officer01"
        assert by_id_number(s, TEST_SECRET, spouse).officer.username == "officer01"
        assert by_id_number(s, TEST_SECRET, other).officer is None  # empty: left as it is
        entries = audits(s, "customer.officer_assigned")
        assert [e.detail for e in entries] == [{"before": None, "after": "officer01", "line_no": 2}] * 2
    path = village_file(tmp_path, [row(head, "supervisor01", spouse), row(other, "")])
    assert main(["import-credit-lines", str(path)], settings=demo_settings) == 0
    with unit_of_work(demo_settings.database_url) as s:
        assert by_id_number(s, TEST_SECRET, head).officer.username == "supervisor01"
        assert audits(s, "customer.officer_assigned")[-1].detail["before"] == "officer01"


@pytest.mark.parametrize(
    "officer_name, message",
    [
        ("wangwu", "第3行：客户经理用户名 'wangwu' 不存在，整个文件未导入"),
        ("stopped", "第3行：客户经理 stopped 的账号已停用"),
    ],
)
def test_a_village_file_naming_an_unknown_or_stopped_officer_is_refused_whole(
    demo_settings, tmp_path, capsys, officer_name, message
):
    with unit_of_work(demo_settings.database_url) as s:
        s.add(Officer(username="stopped", display_name="停", password_hash="x", active=False))
    before_customers = customers(demo_settings)
    rows = [row(person_id("19700101", seq=n), "officer01") for n in (1, 2)]
    rows.insert(1, row(person_id("19700101", seq=5), officer_name))
    path = village_file(tmp_path, rows)
    assert main(["import-credit-lines", str(path)], settings=demo_settings) == 2
    assert message in capsys.readouterr().err
    assert customers(demo_settings) == before_customers  # not even the good first row
    with unit_of_work(demo_settings.database_url) as s:
        (refused,) = audits(s, "village_file.refused")
        assert message in refused.detail["reason"] and refused.subject_id == "3"
        assert not audits(s, "credit_line.granted") or all(e.actor == "demo" for e in audits(s, "credit_line.granted"))


def customers(settings):
    with unit_of_work(settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(Customer))
