"""Issue 17, a consent only the right person can give: the steps after identity are taken only
in the browser session that passed identity; the page shows nothing the identity check asks;
a party's decline reaches the applicant; a locked link stays locked until an officer releases it.
Each attack first, then its refusal: a clear message, recorded in the evidence chain, no report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sunshine.db import unit_of_work
from sunshine.models import (
    ApplicationEvent,
    AuditEntry,
    Authorization,
    ConsentEvidence,
    CreditReportRecord,
    Customer,
    Officer,
)
from tests.unit import auth_media as media
from tests.unit.test_auth_flow import id_digits
from tests.web.test_auth_api import face_form, frames_form, in_wechat
from tests.web.test_console_and_api import login

GUARANTOR_WECHAT, APPLICANT_WECHAT = "o_demo_wangchunhua", "o_demo_zhangjianguo"
STEP_COOKIE = re.compile(r"auth_step_[0-9a-f]{16}=")


def pass_identity(client, token, name, digits):
    resp = client.post(f"/api/authorizations/{token}/identity", json={"name": name, "id_digits": digits})
    assert resp.status_code == 200, resp.json
    return resp


@dataclass(frozen=True)
class Link:
    """The guarantor's authorization link, and what the guarantor types at identity."""

    token: str
    base: str
    name: str
    digits: str


@pytest.fixture
def guarantor(demo_settings, application) -> Link:
    _, tokens, names = application
    token = tokens["guarantor"]
    with unit_of_work(demo_settings.database_url) as s:
        digits = id_digits(s, token)
    return Link(token, f"/api/authorizations/{token}", names["guarantor"], digits)


def identified(make_client, link: Link):
    """A browser in the guarantor's WeChat that passed identity: (client, identity's answer)."""
    client = in_wechat(make_client(), GUARANTOR_WECHAT)
    return client, pass_identity(client, link.token, link.name, link.digits)


def evidence(url, event=None):
    with unit_of_work(url) as s:
        query = select(ConsentEvidence).order_by(ConsentEvidence.id)
        return [(e.event, e.detail) for e in s.scalars(query) if event is None or e.event == event]


def notices_to_applicant(url):
    with unit_of_work(url) as s:
        return [
            a.detail["text"]
            for a in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "customer.notified").order_by(AuditEntry.id)
            )
        ]


def test_another_holder_of_the_link_cannot_take_the_steps_after_identity(make_client, demo_settings, guarantor):
    url, base = demo_settings.database_url, guarantor.base
    party, resp = identified(make_client, guarantor)
    cookie = resp.headers["Set-Cookie"]
    assert STEP_COOKIE.match(cookie) and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # http: a Secure cookie would never come back
    assert "step_session" not in resp.json  # the page's script never sees it

    # the attack: the applicant holds the guarantor's link too, and takes the steps after identity
    applicant = in_wechat(make_client(), APPLICANT_WECHAT)
    attempts = [
        applicant.post(f"{base}/biometric-consent", json={"agree": True}),
        applicant.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data"),
        applicant.post(f"{base}/consent", json={"agree": True}),
    ]
    applicant.set_cookie(cookie.split("=", 1)[0], "guessed-session-id")  # a forged session id
    attempts.append(applicant.post(f"{base}/biometric-consent", json={"agree": True}))
    applicant.set_cookie(cookie.split("=", 1)[0], "x", max_age=0)  # the mini-program's header is checked the same
    attempts.append(
        applicant.post(f"{base}/consent", json={"agree": True}, headers={"X-Step-Session": "guessed-session-id"})
    )
    for resp in attempts:
        assert resp.status_code == 409 and resp.json["restart"] is True
        assert "请在刚才核对身份的那台手机上继续" in resp.json["message"]
    # what the applicant's browser is shown: nothing the identity check asks
    view = applicant.get(base).json
    assert view["party_name"] == "王*华" and view["party_id_masked"] == digits_free(view["party_id_masked"])
    assert view["consent_text"] == "" and view["steps"] == {
        "identity": False,
        "biometric_consent": False,
        "face": False,
    }

    # the party's own session goes on
    assert party.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    own = party.get(base).json
    assert own["party_name"] == guarantor.name and guarantor.name in own["consent_text"]
    assert own["steps"] == {"identity": True, "biometric_consent": True, "face": False}
    refused = evidence(url, "refused")
    assert [(d["step"], d["reason"]) for _, d in refused] == [
        ("biometric_consent", "other_session"),
        ("face", "other_session"),
        ("consent", "other_session"),
        ("biometric_consent", "other_session"),
        ("consent", "other_session"),
    ]
    with unit_of_work(url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "guarantor"))
        assert auth.status == "pending" and auth.face_verified_at is None and auth.attempts == 0
        assert len(auth.step_session_hash) == 64 and auth.step_session_hash not in cookie  # only its hash is kept
        assert s.scalars(select(CreditReportRecord).order_by(CreditReportRecord.id)).all() == []


def digits_free(shown: str) -> str:
    """The shown ID: its first 4 characters, the rest (birth date and the last 6 asked) hidden."""
    assert len(shown) == 18 and shown[4:] == "*" * 14 and shown[:4].isdigit()
    return shown


def test_a_second_session_passing_identity_starts_afresh_and_the_first_is_refused(
    make_client, demo_settings, guarantor
):
    url, base = demo_settings.database_url, guarantor.base
    first, _ = identified(make_client, guarantor)
    assert first.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]

    # another phone of the same party (their own WeChat: identity passes there too)
    second, _ = identified(make_client, guarantor)

    # it inherits nothing: the biometric consent given in the first session does not carry over
    assert second.get(base).json["steps"] == {"identity": True, "biometric_consent": False, "face": False}
    resp = second.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 409 and "人脸核验" in resp.json["message"]
    # and the first session can no longer go on
    resp = first.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 409 and resp.json["restart"] is True
    replaced = evidence(url, "session_replaced")
    assert len(replaced) == 1 and replaced[0][1]["reset"] == {"biometric_consent": True, "face": False}
    event, detail = evidence(url)[-1]
    assert event == "refused" and detail["reason"] == "other_session" and "核对身份" in detail["message"]


def test_the_page_shows_who_asks_and_nothing_the_identity_check_asks(make_client, demo_settings, application):
    from auth_flow.tokens import issue
    from lending.customers import by_openid
    from sunshine.protect import unseal
    from tests.conftest import TEST_SECRET

    url, (_, tokens, names) = demo_settings.database_url, application
    with unit_of_work(url) as s:
        officer = s.scalar(select(Officer).where(Officer.username == "officer01")).display_name
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "guarantor"))
        id_number = unseal(TEST_SECRET, s.get(type(by_openid(s, GUARANTOR_WECHAT)), auth.party_customer_id).id_sealed)
        head = by_openid(s, APPLICANT_WECHAT)
        from_bot = issue(s, head, head, "applicant", "bot", timedelta(minutes=30)).token
    browser = in_wechat(make_client(), APPLICANT_WECHAT)
    page = browser.get(f"/auth/{tokens['guarantor']}").data.decode()
    assert "王*华" in page and names["guarantor"] not in page
    assert id_number[:4] + "*" * 14 in page and id_number[-4:] not in page and id_number[-6:] not in page
    assert f"客户经理{officer}" in page and ">bot<" not in page
    assert 'id="biometric-no"' in page and "不同意" in page and "scaleX(-1)" in page and "scrollIntoView" in page
    assert "接下来会怎样" in page
    page = browser.get(f"/auth/{from_bot}").data.decode()
    assert "阳光信贷助手" in page and ">bot<" not in page


def test_a_declined_face_check_is_recorded_and_the_applicant_told_once(
    make_client, demo_settings, application, guarantor
):
    url, app_id, base = demo_settings.database_url, application[0], guarantor.base
    party, _ = identified(make_client, guarantor)
    for _ in range(2):
        resp = party.post(f"{base}/biometric-consent", json={"agree": False})
        assert (
            resp.status_code == 409
            and "没有同意人脸核验" in resp.json["message"]
            and "已告知申请人" in resp.json["message"]
        )
    assert len(evidence(url, "biometric_declined")) == 2
    assert notices_to_applicant(url) == [
        "您的担保人王**没有同意人脸核验，无法在线完成征信授权。可以一起到网点当面办理，或联系客户经理。"
    ]
    with unit_of_work(url) as s:
        actions = [
            e.action
            for e in s.scalars(
                select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
            )
        ]
        assert actions.count("biometric_declined") == 1
    # a change of mind: the same session can still agree
    assert party.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]


def test_a_refused_consent_is_told_to_the_applicant(make_client, demo_settings, guarantor):
    url, base = demo_settings.database_url, guarantor.base
    party, _ = identified(make_client, guarantor)
    assert party.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    assert party.post(f"{base}/face", data=face_form(party, base), content_type="multipart/form-data").json["ok"]
    resp = party.post(f"{base}/consent", json={"agree": False})
    assert resp.json["status"] == "refused" and "已告知申请人" in resp.json["message"]
    assert notices_to_applicant(url) == [
        "您的担保人王**拒绝了征信查询授权，这笔申请暂时无法继续审批。如有疑问请联系客户经理。"
    ]


def test_a_lock_is_told_to_the_applicant_and_released_only_by_an_officer(make_client, demo_settings, application):
    url, (app_id, tokens, names) = demo_settings.database_url, application
    base = f"/api/authorizations/{tokens['guarantor']}"
    party = in_wechat(make_client(), GUARANTOR_WECHAT)
    for _ in range(demo_settings.auth_max_attempts):
        resp = party.post(f"{base}/identity", json={"name": names["guarantor"], "id_digits": "000000"})
    assert resp.status_code == 422 and resp.json["locked"] is True
    assert "已锁定" in notices_to_applicant(url)[-1] and "您的担保人王**" in notices_to_applicant(url)[-1]

    console = make_client()
    login(console)
    page = console.get(f"/console/applications/{app_id}").data.decode()
    assert "已锁定的授权" in page and "解除锁定" in page
    with unit_of_work(url) as s:
        auth_id = s.scalar(select(Authorization.id).where(Authorization.party_role == "guarantor"))
        officer = s.scalar(select(Officer).where(Officer.username == "officer01")).display_name
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    release = f"/console/applications/{app_id}/authorizations/{auth_id}/release"
    assert console.post(release, data={}).status_code == 400  # no CSRF token: refused
    resp = console.post(release, data={"csrf": csrf})
    assert resp.status_code == 302
    assert "已解锁" in console.get(f"/console/applications/{app_id}").data.decode()
    resp = console.post(release, data={"csrf": csrf}, follow_redirects=True)
    assert "没有被锁定" in resp.data.decode()  # released once
    with unit_of_work(url) as s:
        assert s.get(Authorization, auth_id).status == "released"
        notes = [
            e
            for e in s.scalars(
                select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
            )
            if e.action == "authorization_released"
        ]
        assert len(notes) == 1 and notes[0].actor == officer and officer in notes[0].reason
    assert [e for e, _ in evidence(url)][-2:] == ["locked", "released"]
    # the old link stays dead after the release
    assert party.get(base).status_code == 404


def test_the_mini_program_carries_its_step_session_in_a_header(make_client, demo_settings, application):
    import requests

    from emulators import serve_in_thread
    from emulators.wechat.api import create_app as wechat_app

    url, (_, tokens, _) = demo_settings.database_url, application
    base = f"/api/authorizations/{tokens['guarantor']}"
    with unit_of_work(url) as s:  # the guarantor's WeChat in the mini-program: another openid than in the chat
        s.execute(update(Customer).where(Customer.wechat_openid == GUARANTOR_WECHAT).values(mp_openid="m_guarantor"))
    with serve_in_thread(wechat_app(demo_settings)) as wx:
        code = requests.post(f"{wx}/_emulator/jscodes", json={"openid": "m_guarantor"}).json()["code"]
        resp = make_client(wechat_api_base=wx).post(f"{base}/identity", json={"wx_code": code})
    step_session = resp.json["step_session"]
    assert resp.status_code == 200 and len(step_session) >= 43
    mini_program = make_client()  # wx.request keeps no cookies
    assert mini_program.post(f"{base}/biometric-consent", json={"agree": True}).status_code == 409
    resp = mini_program.post(
        f"{base}/biometric-consent", json={"agree": True}, headers={"X-Step-Session": step_session}
    )
    assert resp.status_code == 200 and resp.json["ok"]
    assert [d["reason"] for _, d in evidence(url, "refused")] == ["other_session"]
