from datetime import timedelta

import pytest
from sqlalchemy import func, select

import handoff.service
from auth_flow.qr import authorization_url, png
from auth_flow.tokens import AuthorizationError, find_by_token, issue
from handoff.service import HandOffError, request_hand_off
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import Authorization, HandOff


def test_asking_twice_gives_one_hand_off_routed_to_own_officer(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        first, created = request_hand_off(s, "o_demo_zhangjianguo", "customer_request", {"last_messages": ["转人工"]})
        second, created_again = request_hand_off(s, "o_demo_zhangjianguo", "customer_request")
        assert created and not created_again and first.id == second.id
        assert first.officer.username == "officer01"
        assert s.scalar(select(func.count()).select_from(HandOff)) == 1


def test_unknown_customer_goes_to_branch_queue(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        hand_off, _ = request_hand_off(s, "o_stranger", "not_understood")
        assert hand_off.officer_id is None and hand_off.customer_id is None
        with pytest.raises(HandOffError):
            request_hand_off(s, "o_stranger", "bored")


def test_token_opens_only_its_own_pending_request(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        issued = issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30))
        expired = issue(s, customer, customer, "applicant", "bot", timedelta(seconds=-1))
        assert issued.token not in issued.authorization.token_hash
        assert find_by_token(s, issued.token).id == issued.authorization.id
        with pytest.raises(AuthorizationError, match="过期"):
            find_by_token(s, expired.token)
        with pytest.raises(AuthorizationError, match="无效"):
            find_by_token(s, issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"))
        issued.authorization.status = "consented"
        with pytest.raises(AuthorizationError, match="已使用"):
            find_by_token(s, issued.token)
        assert s.scalar(select(func.count()).select_from(Authorization)) == 2


def test_qr_png():
    data = png(authorization_url("https://bank.example/", "tok"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 300
    assert authorization_url("https://bank.example/", "tok") == "https://bank.example/auth/tok"


def test_racing_requests_open_one_hand_off(demo_db_url, monkeypatch):
    """A request that read 'no open hand-off' just before another committed one
    is stopped by the unique index and gets the one that won."""
    with unit_of_work(demo_db_url) as s:
        winner, _ = request_hand_off(s, "o_demo_wangchunhua", "customer_request")
    real, calls = handoff.service.open_hand_off, []

    def first_read_is_stale(session, openid):
        calls.append(openid)
        return None if len(calls) == 1 else real(session, openid)

    monkeypatch.setattr(handoff.service, "open_hand_off", first_read_is_stale)
    with unit_of_work(demo_db_url) as s:
        loser, created = request_hand_off(s, "o_demo_wangchunhua", "customer_request")
        assert not created and loser.id == winner.id and len(calls) == 2
        assert s.scalar(select(func.count()).select_from(HandOff)) == 1
