"""The loan contract's page and API as the borrower's browser uses them: read, sign, download."""

from __future__ import annotations

import hashlib

import requests
from sqlalchemy import select

from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from lending.contracts import for_application
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, LoanApplication
from tests.unit.contract_helpers import ZHANG, Disbursals, approved
from tests.web.test_auth_api import in_wechat


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
        viewed = s.scalars(select(AuditEntry).where(AuditEntry.action == "contract.pdf_viewed")).all()
        assert [(e.actor, e.subject_id) for e in viewed] == [("officer:officer01", str(app_id))]
