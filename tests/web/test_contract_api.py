"""The loan contract's page and API as the borrower's browser uses them: read, sign, download."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import requests
from sqlalchemy import select

from auth_flow.enrolment import enroll_reference
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from lending.contracts import for_application, token_for
from lending.customers import by_openid
from sunshine.clock import travel_to, utcnow
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, LoanApplication
from tests import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.contract_helpers import ZHANG, Disbursals, approved
from tests.web.test_auth_api import face_form, in_wechat
from tests.web.test_console_and_api import csrf_of, login


def test_the_borrower_opens_the_link_in_wechat_reads_signs_and_downloads_the_pdf(make_client, demo_settings):
    _, _, app_id, token = approved(demo_settings.database_url)
    jobs = Disbursals()
    with serve_in_thread(wechat_app(demo_settings)) as wx:
        client = make_client(jobs=jobs, wechat_api_base=wx, wechat_open_base=wx, public_base_url="http://bank.test")
        resp = client.get(f"/contract/{token}")  # first through WeChat's web authorization
        assert resp.status_code == 302 and "/connect/oauth2/authorize?" in resp.headers["Location"]
        requests.post(f"{wx}/_emulator/oauth_user", json={"openid": ZHANG})
        back = requests.get(resp.headers["Location"], allow_redirects=False).headers["Location"]
        resp = client.get(back.removeprefix("http://bank.test"))
        assert resp.status_code == 302 and resp.headers["Location"] == f"/contract/{token}"
        page = client.get(f"/contract/{token}")
    html = page.data.decode()
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "个人借款合同" in html and "伍万元整" in html and "确认签署" in html and 'id="sms-code"' not in html
    view = client.get(f"/api/contracts/{token}").json
    assert view["status"] == "offered" and view["text_sha256"] in html
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": view["text_sha256"]})
    assert resp.status_code == 200 and resp.json["ok"] and resp.json["status"] == "signed", resp.json
    assert jobs.queued == [app_id]
    pdf = client.get(f"/api/contracts/{token}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert hashlib.sha256(pdf.data).hexdigest() == resp.json["pdf_sha256"]
    assert f"YGJK{app_id:08d}" in pdf.headers["Content-Disposition"]
    signed_page = client.get(f"/contract/{token}").data.decode()
    assert "合同已签署" in signed_page and "本人微信" in signed_page and 'id="sign-go"' not in signed_page
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "signed"
        assert for_application(s, app_id).pdf == pdf.data


def test_a_borrower_without_wechat_gets_a_code_and_signs_with_it(make_client, demo_settings, sms):
    import re

    sms_client, received = sms
    _, _, app_id, token = approved(demo_settings.database_url, wechat=False)
    jobs = Disbursals()
    client = in_wechat(make_client(jobs=jobs, sms_api_base=sms_client.base_url, sms_api_key="test-sms-key"), "o_x")
    html = client.get(f"/contract/{token}").data.decode()
    assert 'id="sms-code"' in html and "139****0001" in html
    resp = client.post(f"/api/contracts/{token}/sms-code", json={})
    assert resp.status_code == 200 and "139****0001" in resp.json["message"]
    code = re.search(r"\d{6}", received[-1]["content"]).group()
    sha = client.get(f"/api/contracts/{token}").json["text_sha256"]
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha, "sms_code": code})
    assert resp.status_code == 200 and jobs.queued == [app_id], resp.json


def test_the_officer_sees_the_contract_and_downloads_its_pdf(make_client, demo_settings):
    from tests.web.test_console_and_api import login

    svc, _, app_id, token = approved(demo_settings.database_url)
    borrower = in_wechat(make_client(jobs=Disbursals()), ZHANG)
    page = make_client()
    login(page)
    assert "借款合同" in page.get(f"/console/applications/{app_id}").data.decode()
    assert page.get(f"/console/applications/{app_id}/contract.pdf").status_code == 404  # not signed yet
    sha = borrower.get(f"/api/contracts/{token}").json["text_sha256"]
    assert borrower.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha}).status_code == 200
    html = page.get(f"/console/applications/{app_id}").data.decode()
    assert "借款合同 (PDF)" in html and "已签署" in html
    pdf = page.get(f"/console/applications/{app_id}/contract.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    with unit_of_work(demo_settings.database_url) as s:
        viewed = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "contract.pdf_viewed").order_by(AuditEntry.id)
        ).all()
        assert [(e.actor, e.subject_id) for e in viewed] == [("officer:officer01", str(app_id))]


def test_above_the_limit_the_borrower_passes_the_face_check_through_the_api_then_signs(make_client, demo_settings):
    _, _, app_id, token = approved(demo_settings.database_url, amount=80_000)
    with unit_of_work(demo_settings.database_url) as s:
        enroll_reference(s, TEST_SECRET, by_openid(s, ZHANG), media.reference(), "officer01")
    jobs = Disbursals()
    client = in_wechat(make_client(jobs=jobs), ZHANG)
    base = f"/api/contracts/{token}"
    html = client.get(f"/contract/{token}").data.decode()
    assert 'id="step-face"' in html and "face.js" in html and "超过5万元" in html
    view = client.get(base).json
    assert (view["face_required"], view["face_verified"]) == (True, False)
    refused = client.post(f"{base}/sign", json={"text_sha256": view["text_sha256"]})
    assert refused.status_code == 409 and refused.json["code"] == "face_required" and "刷脸" in refused.json["message"]
    assert client.post(f"{base}/face", data={}, content_type="multipart/form-data").status_code == 400
    stale = client.post(f"{base}/face", data=face_form(client, base, nonce="stale"), content_type="multipart/form-data")
    assert stale.status_code == 422 and stale.json["code"] == "face_failed" and stale.json["attempts_left"] == 4
    passed = client.post(f"{base}/face", data=face_form(client, base), content_type="multipart/form-data")
    assert passed.status_code == 200 and passed.json["ok"] and passed.json["face"]["decision"] == "pass", passed.json
    again = client.post(f"{base}/face-challenge", json={})
    assert again.status_code == 409 and again.json["code"] == "refused" and "已通过刷脸" in again.json["message"]
    assert client.get(base).json["face_verified"] is True
    signed = client.post(f"{base}/sign", json={"text_sha256": view["text_sha256"]})
    assert signed.status_code == 200 and signed.json["status"] == "signed" and jobs.queued == [app_id]


def test_at_the_limit_the_face_api_refuses_and_changes_nothing(make_client, demo_settings):
    _, _, app_id, token = approved(demo_settings.database_url, amount=50_000)
    client = in_wechat(make_client(), ZHANG)
    assert 'id="step-face"' not in client.get(f"/contract/{token}").data.decode()
    resp = client.post(f"/api/contracts/{token}/face-challenge", json={})
    assert resp.status_code == 409 and "不需要刷脸" in resp.json["message"]
    stranger = in_wechat(make_client(), "o_someone")
    resp = stranger.post(f"/api/contracts/{token}/face-challenge", json={})
    assert resp.status_code == 403 and resp.json["code"] == "other_person"


def test_an_expired_link_is_renewed_from_its_page_and_the_officer_renews_from_the_console(make_client, demo_settings):
    _, _, app_id, token = approved(demo_settings.database_url)
    client = in_wechat(make_client(public_base_url="http://bank.test"), ZHANG)
    resp = client.post(f"/api/contracts/{token}/renew", json={})
    assert resp.status_code == 409 and resp.json["code"] == "not_expired"
    with travel_to(utcnow() + timedelta(hours=73)):
        html = client.get(f"/contract/{token}").data.decode()
        assert 'id="renew-go"' in html and 'id="sign-go"' not in html
        resp = client.post(f"/api/contracts/{token}/renew", json={})
        assert resp.status_code == 200 and resp.json["ok"], resp.json
        new = resp.json["link"].removeprefix("http://bank.test/contract/")
        assert new == token_for(TEST_SECRET, app_id, 1)
        assert client.get(f"/api/contracts/{token}").status_code == 404
        assert client.get(f"/api/contracts/{new}").json["expired"] is False
    console = make_client()
    login(console, "officer01")
    page = console.get(f"/console/applications/{app_id}").data
    assert "重新发签署链接" in page.decode()
    resp = console.post(f"/console/applications/{app_id}/contract/renew", data={"csrf": csrf_of(page)})
    assert resp.status_code == 302
    assert "已生成新的合同签署链接并发到客户微信" in console.get(resp.headers["Location"]).data.decode()
    assert client.get(f"/api/contracts/{new}").status_code == 404
    assert client.get(f"/api/contracts/{token_for(TEST_SECRET, app_id, 2)}").json["status"] == "offered"
