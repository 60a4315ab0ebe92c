"""The hand-off service on a real database: routing, one hand-off per customer,
who may claim, transfer, answer and close, deadlines and escalation notices."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from conversation.followers import followed, station_by_code
from handoff import service as h
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, HandOff, Officer, OfficerNotice

OPENID = "o_demo_zhangjianguo"


def officer(s, username):
    return s.scalar(select(Officer).where(Officer.username == username))


def notices(s):
    return [(n.officer.username, n.kind, n.status) for n in s.scalars(select(OfficerNotice).order_by(OfficerNotice.id))]


def test_customer_asking_twice_gets_one_hand_off_with_one_notice_to_own_officer(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        first, created = h.request_hand_off(s, OPENID, "customer_request", {"intent": "request_human"})
        again, created_again = h.request_hand_off(s, OPENID, "customer_request")
        assert created and not created_again and again.id == first.id
        assert first.officer.username == "officer01" and first.priority == h.PRIORITIES["customer_request"]
        assert notices(s) == [("officer01", "new", "pending")]
        assert "张建国" in s.scalar(select(OfficerNotice.text))


def test_station_follower_goes_to_station_officer_stranger_to_branch_queue_and_supervisors(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        followed(s, "o_station_scan", station_by_code(s, "HQ002"))
        by_station, _ = h.request_hand_off(s, "o_station_scan", "not_understood")
        stranger, _ = h.request_hand_off(s, "o_stranger", "bot_unavailable")
        assert by_station.officer.username == "supervisor01"
        assert stranger.officer_id is None and stranger.priority == 2
        # the branch queue's hand-off is announced to the supervisors, who dispatch it
        assert ("supervisor01", "new", "pending") in notices(s)
        assert "支行队列" in s.scalar(select(OfficerNotice.text).where(OfficerNotice.hand_off_id == stranger.id))


def test_unknown_reason_is_refused_and_changes_nothing(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        with pytest.raises(h.HandOffError):
            h.request_hand_off(s, OPENID, "bored")
        assert s.scalar(select(HandOff)) is None


def test_officer_sees_own_and_branch_queue_supervisor_everything(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        own, _ = h.request_hand_off(s, OPENID, "customer_request")
        branch, _ = h.request_hand_off(s, "o_stranger", "not_understood")
        followed(s, "o_station_scan", station_by_code(s, "HQ002"))
        others, _ = h.request_hand_off(s, "o_station_scan", "customer_request")
        li, zhou = officer(s, "officer01"), officer(s, "supervisor01")
        assert {x.id for x in h.queue_rows(s, li)} == {own.id, branch.id}
        assert [x.id for x in h.queue_rows(s, zhou)] == [own.id, branch.id, others.id]  # same priority: by deadline
        assert [x.id for x in h.queue_rows(s, zhou, only_officer_id=li.id)] == [own.id]
        assert h.queue_rows(s, li)[0].customer_name == "张建国"
        with pytest.raises(h.NotAllowed):
            h.check_access(li, others)
        with pytest.raises(h.NotAllowed):
            h.officer_reply(s, others, li, "你好")
        h.check_access(zhou, own)


def test_reply_claims_then_close_keeps_a_closing_note_and_refuses_more(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        branch, _ = h.request_hand_off(s, "o_stranger", "customer_request")
        li = officer(s, "officer01")
        with pytest.raises(h.HandOffError, match="回复内容"):
            h.officer_reply(s, branch, li, "   ")
        with pytest.raises(h.HandOffError, match="太长"):
            h.officer_reply(s, branch, li, "贷" * 700)
        message = h.officer_reply(s, branch, li, "您好，我是李经理")
        assert (branch.status, branch.officer_id) == ("claimed", li.id)
        assert (message.author, message.status, message.direction) == ("officer:officer01", "queued", "outbound")
        note = h.close_by_officer(s, branch, li, "已电话联系")
        assert note.body == h.CLOSING_NOTE and branch.status == "closed" and h.open_hand_off(s, "o_stranger") is None
        with pytest.raises(h.HandOffError, match="已经结束"):
            h.officer_reply(s, branch, li, "还在吗")
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_type == "hand_off").order_by(AuditEntry.id)
        ).all()
        assert actions == ["hand_off.requested", "hand_off.claimed", "hand_off.closed"]
        # the customer's next 转人工 opens a new hand-off
        assert h.request_hand_off(s, "o_stranger", "customer_request")[1]


def test_transfer_moves_the_hand_off_and_tells_the_new_officer(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        own, _ = h.request_hand_off(s, OPENID, "customer_request")
        li, zhou = officer(s, "officer01"), officer(s, "supervisor01")
        h.claim(s, own, li)
        with pytest.raises(h.HandOffError, match="没有这位"):
            h.transfer(s, own, li, 9999)
        with pytest.raises(h.HandOffError, match="已经由"):
            h.transfer(s, own, li, li.id)
        assert h.transfer(s, own, li, zhou.id, "大额，请主任看").username == "supervisor01"
        assert (own.officer_id, own.status) == (zhou.id, "open")
        assert ("supervisor01", "new", "pending") in notices(s)
        with pytest.raises(h.NotAllowed):  # no longer officer01's
            h.claim(s, own, li)


def test_deadlines_warn_the_officer_and_escalate_overdue_to_supervisors_once(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        near, _ = h.request_hand_off(s, OPENID, "customer_request", deadline=timedelta(minutes=3))
        late, _ = h.request_hand_off(s, "o_stranger", "customer_request", deadline=timedelta(minutes=-1))
        later, _ = h.request_hand_off(s, "o_other", "customer_request", deadline=timedelta(hours=2))
        assert h.sweep_deadlines(s, timedelta(minutes=5)) == 2
        assert h.sweep_deadlines(s, timedelta(minutes=5)) == 0
        kinds = {
            (n.hand_off_id, n.officer.username, n.kind)
            for n in s.scalars(select(OfficerNotice).order_by(OfficerNotice.id))
        }
        assert (near.id, "officer01", "deadline") in kinds
        assert (late.id, "supervisor01", "overdue") in kinds
        assert not any(k[0] == later.id and k[2] != "new" for k in kinds)
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "hand_off.escalated")).subject_id == str(late.id)
        # a wider window reaches the branch queue's hand-off (its deadline warning goes to the supervisors)
        assert h.sweep_deadlines(s, timedelta(hours=3)) == 1
        assert (
            s.scalar(
                select(OfficerNotice).where(OfficerNotice.hand_off_id == later.id, OfficerNotice.kind == "deadline")
            ).officer.username
            == "supervisor01"
        )


def test_resend_offers_a_template_only_outside_the_window(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        hand_off, _ = h.request_hand_off(s, OPENID, "customer_request")
        li = officer(s, "officer01")
        message = h.officer_reply(s, hand_off, li, "请明天来网点")
        with pytest.raises(h.HandOffError, match="不需要重发"):
            h.resend(s, message, li)
        message.status, message.errcode = "undelivered", 45015
        assert h.resend(s, message, li) == "template_queued"
        message.status, message.errcode = "undelivered", None
        assert h.resend(s, message, li) == "queued"
