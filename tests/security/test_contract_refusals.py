"""The contract API refuses what must not be signed: a clear Chinese message, a code for
machines, and nothing signed, nothing paid."""

from __future__ import annotations

import pytest

from lending.contracts import for_application
from sunshine.db import unit_of_work
from sunshine.models import LoanApplication, LoanProduct
from tests.unit.contract_helpers import ZHANG, Disbursals, approved
from tests.web.test_auth_api import in_wechat


@pytest.fixture
def borrower(make_client, demo_settings):
    """(the borrower's browser in their WeChat, the app's disbursals, application id, token, shown hash)."""
    svc, _, app_id, token = approved(demo_settings.database_url)
    jobs = Disbursals()
    client = in_wechat(make_client(jobs=jobs), ZHANG)
    return client, jobs, app_id, token, client.get(f"/api/contracts/{token}").json["text_sha256"]


def _unsigned(settings, app_id, jobs):
    assert jobs.queued == []
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "approved"
        assert for_application(s, app_id).pdf is None


def test_another_persons_wechat_cannot_read_sign_or_download(make_client, demo_settings, borrower):
    _, jobs, app_id, token, sha = borrower
    stranger = in_wechat(make_client(jobs=jobs), "o_demo_wangchunhua")
    for resp in (
        stranger.get(f"/api/contracts/{token}"),
        stranger.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha}),
        stranger.get(f"/api/contracts/{token}/pdf"),
    ):
        assert resp.status_code == 403 and resp.json["code"] == "other_person" and "借款人本人" in resp.json["message"]
    page = stranger.get(f"/contract/{token}")
    assert page.status_code == 403 and "借款人本人" in page.data.decode() and "伍万元整" not in page.data.decode()
    _unsigned(demo_settings, app_id, jobs)


def test_a_changed_text_a_forged_token_and_bad_bodies_are_refused(demo_settings, borrower):
    client, jobs, app_id, token, sha = borrower
    with unit_of_work(demo_settings.database_url) as s:
        s.get(LoanProduct, "sunshine_e_loan").annual_rate_bp = 465
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha})
    assert resp.status_code == 422 and resp.json == {
        "error": "Unprocessable Entity",
        "code": "text_changed",
        "message": "合同内容已更新，请重新阅读后再签署",
    }
    resp = client.post("/api/contracts/forged-token-0000000000000000/sign", json={"text_sha256": sha})
    assert resp.status_code == 404 and resp.json["code"] == "unknown_token" and "合同链接无效" in resp.json["message"]
    assert client.get("/contract/forged-token").status_code == 404
    for body in ("x", {"text_sha256": 5}, {"text_sha256": sha, "sms_code": 123456}):
        kwargs = {"data": body, "content_type": "text/plain"} if isinstance(body, str) else {"json": body}
        resp = client.post(f"/api/contracts/{token}/sign", **kwargs)
        assert resp.status_code == 400 and resp.json["code"] == "bad_request"
    assert client.get(f"/api/contracts/{token}/pdf").json["code"] == "not_signed"
    _unsigned(demo_settings, app_id, jobs)


def test_a_signed_or_withdrawn_contract_is_not_signed_again(demo_settings, borrower):
    client, jobs, app_id, token, sha = borrower
    assert client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha}).status_code == 200
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha})
    assert resp.status_code == 409 and resp.json["code"] == "already_signed" and "已经签署" in resp.json["message"]
    assert jobs.queued == [app_id]  # once


def test_a_withdrawn_application_is_not_signed(demo_settings, borrower):
    from tests.unit.lending_helpers import service

    client, jobs, app_id, token, sha = borrower
    with unit_of_work(demo_settings.database_url) as s:
        service()[0].withdraw(s, app_id)
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha})
    assert resp.status_code == 409 and resp.json["code"] == "withdrawn" and "已撤销" in resp.json["message"]
    assert jobs.queued == []


def test_a_wrong_code_is_refused_and_used_up(make_client, demo_settings, sms):
    sms_client, received = sms
    _, _, app_id, token = approved(demo_settings.database_url, wechat=False)
    jobs = Disbursals()
    client = in_wechat(make_client(jobs=jobs, sms_api_base=sms_client.base_url, sms_api_key="test-sms-key"), "o_x")
    sha = client.get(f"/api/contracts/{token}").json["text_sha256"]
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha})
    assert resp.status_code == 409 and "获取短信验证码" in resp.json["message"]  # none sent yet
    client.post(f"/api/contracts/{token}/sms-code", json={})
    code = received[-1]["content"].split("验证码为")[1][:6]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha, "sms_code": wrong})
    assert resp.status_code == 422 and resp.json["code"] == "wrong_code" and "不正确或已过期" in resp.json["message"]
    resp = client.post(f"/api/contracts/{token}/sign", json={"text_sha256": sha, "sms_code": code})
    assert resp.status_code == 422 and resp.json["code"] == "wrong_code"
    _unsigned(demo_settings, app_id, jobs)
