"""The authorization API as the H5 page calls it: bad input and attacks are refused
with a clear message, recorded, and query no report."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, CreditReportRecord
from tests.unit import auth_media as media


def frames_form(frames):
    return {"frames": [(io.BytesIO(f), f"f{i}.jpg") for i, f in enumerate(frames)]}


def face_form(client, base, frames=None, nonce=None):
    """The page's face upload: a challenge from the server, then frames answering it (the clip's
    frames of each asked action, or `frames` over its first steps), with their steps and nonce."""
    challenge = client.post(f"{base}/face-challenge", json={}).json
    assert challenge["ok"], challenge
    actions = [step["action"] for step in challenge["steps"][1:]]
    uploads, steps = media.challenge_frames(actions) if frames is None else (frames, list(range(len(frames))))
    form = frames_form(uploads)
    form.update(steps=[str(k) for k in steps], nonce=nonce or challenge["nonce"])
    return form


def in_wechat(client, openid):
    """This browser session has been through WeChat's web authorization as `openid`
    (test_the_page_goes_through_wechat_s_web_authorization goes through it for real)."""
    with client.session_transaction() as session:
        session["wechat_openid"] = openid
    return client


def test_bad_input_and_attacks_are_refused_and_recorded(make_client, demo_settings, application):
    client = make_client()
    _, tokens, names = application
    token = tokens["guarantor"]
    base = f"/api/authorizations/{token}"
    resp = client.post(f"{base}/identity", json={"name": names["guarantor"], "id_digits": "999999"})
    assert resp.status_code == 409 and "微信里打开" in resp.json["message"]  # no WeChat identity yet
    in_wechat(client, "o_demo_wangchunhua")
    page = client.get(f"/auth/{token}").data.decode()
    assert "身份证号后6位" in page and "人脸" in page and "短信验证码" not in page
    assert client.get(base).json["steps"] == {"identity": False, "biometric_consent": False, "face": False}
    # consent and face without the earlier steps
    resp = client.post(f"{base}/consent", json={"agree": True})
    assert resp.status_code == 409 and "人脸核验" in resp.json["message"]
    resp = client.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 409
    resp = client.post(f"{base}/face-challenge", json={})
    assert resp.status_code == 409 and "先核对身份" in resp.json["message"]
    assert client.post(f"{base}/identity", data="x", content_type="text/plain").status_code == 400
    assert client.post(f"{base}/identity", json={"name": names["guarantor"]}).status_code == 400
    resp = client.post(f"{base}/identity", json={"name": names["guarantor"], "id_digits": "999999"})
    assert resp.status_code == 422 and resp.json["attempts_left"] == 4
    # a forged token
    resp = client.post("/api/authorizations/forged/identity", json={"name": "x", "id_digits": "123456"})
    assert resp.status_code == 404 and "无效" in resp.json["message"]
    # a 50 MB upload is refused before it is read
    resp = client.post(f"{base}/face", data=b"0" * (50 * 1024 * 1024), content_type="multipart/form-data; boundary=x")
    assert resp.status_code == 413 and "太大" in resp.json["message"]
    assert client.post(f"{base}/face", data={}, content_type="multipart/form-data").status_code == 400
    with unit_of_work(demo_settings.database_url) as s:
        events = [e.event for e in s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id))]
        assert events == ["refused", "refused", "refused", "refused", "identity_failed"]
        assert s.scalar(select(Authorization.attempts).where(Authorization.party_role == "guarantor")) == 1
        assert s.scalars(select(CreditReportRecord).order_by(CreditReportRecord.id)).all() == []


def test_a_non_image_upload_counts_as_a_failed_attempt(make_client, demo_settings, application, sms):
    from sunshine.models import Customer
    from sunshine.protect import unseal
    from tests.conftest import TEST_SECRET

    sms_client, texts = sms
    client = in_wechat(make_client(sms_api_base=sms_client.base_url, sms_api_key=sms_client.api_key), "o_someone")
    _, tokens, names = application
    base = f"/api/authorizations/{tokens['spouse']}"
    with unit_of_work(demo_settings.database_url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "spouse"))
        digits = unseal(TEST_SECRET, s.get(Customer, auth.party_customer_id).id_sealed)[-6:]
    assert "短信验证码" in client.get(f"/auth/{tokens['spouse']}").data.decode()  # no WeChat bound: SMS
    resp = client.post(f"{base}/sms-code", json={})
    assert resp.status_code == 200 and "139****0002" in resp.json["message"]
    code = re.search(r"验证码为(\d{6})", texts[-1]["content"]).group(1)
    assert client.post(f"{base}/identity", json={"name": names["spouse"], "id_digits": digits, "sms_code": code}).json[
        "ok"
    ]
    assert client.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    pdf = face_form(client, base, [b"%PDF-1.4"] * 3)
    resp = client.post(f"{base}/face", data=dict(pdf), content_type="multipart/form-data")
    assert resp.status_code == 422 and "不是照片" in resp.json["message"]
    resp = client.post(
        f"{base}/face", data=face_form(client, base, nonce=pdf["nonce"]), content_type="multipart/form-data"
    )
    assert resp.status_code == 422 and "用过" in resp.json["message"]  # a nonce answers one attempt
    resp = client.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 422 and "开始" in resp.json["message"]  # frames without a challenge
    resp = client.post(f"{base}/face", data=face_form(client, base), content_type="multipart/form-data")
    assert resp.status_code == 200 and resp.json["face"]["decision"] == "pass"


def test_openapi_lists_every_authorization_endpoint(make_client):
    paths = make_client().get("/api/openapi.json").json["paths"]
    for suffix in (
        "",
        "/qr.png",
        "/wechat-code.png",
        "/identity",
        "/sms-code",
        "/biometric-consent",
        "/face-challenge",
        "/face",
        "/consent",
    ):
        assert f"/api/authorizations/{{token}}{suffix}" in paths


def test_the_page_goes_through_wechat_s_web_authorization(make_client, demo_settings, application):
    import requests

    from emulators import serve_in_thread
    from emulators.wechat.api import create_app as wechat_app

    _, tokens, names = application
    token = tokens["applicant"]
    with serve_in_thread(wechat_app(demo_settings)) as wx:

        def browser():
            return make_client(wechat_api_base=wx, wechat_open_base=wx, public_base_url="http://bank.test")

        client = browser()
        resp = client.get(f"/auth/{token}")
        authorize = resp.headers["Location"]
        assert (
            resp.status_code == 302
            and authorize.startswith(
                f"{wx}/connect/oauth2/authorize?appid={demo_settings.wechat_appid}"
                "&redirect_uri=http%3A%2F%2Fbank.test%2Fauth%2Fwechat-callback&response_type=code&scope=snsapi_base"
                "&state="
            )
            and authorize.endswith("#wechat_redirect")
        )
        assert "请在微信客户端打开" in requests.get(authorize).text  # a browser outside WeChat
        requests.post(f"{wx}/_emulator/oauth_user", json={"openid": "o_demo_zhangjianguo"})
        back = requests.get(authorize, allow_redirects=False).headers["Location"]
        assert back.startswith("http://bank.test/auth/wechat-callback?code=")
        callback = back.removeprefix("http://bank.test")
        resp = client.get(callback)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/auth/{token}")
        assert client.get(callback).status_code == 400  # replayed: the state is used up
        assert "身份证号后6位" in client.get(f"/auth/{token}").data.decode()
        with unit_of_work(demo_settings.database_url) as s:
            from tests.unit.test_auth_flow import id_digits

            digits = {role: id_digits(s, t) for role, t in tokens.items()}
        resp = client.post(
            f"/api/authorizations/{token}/identity", json={"name": names["applicant"], "id_digits": digits["applicant"]}
        )
        assert resp.json["ok"]
        # the guarantor's link opened in 张建国's WeChat: the right name and digits are not enough
        resp = client.post(
            f"/api/authorizations/{tokens['guarantor']}/identity",
            json={"name": names["guarantor"], "id_digits": digits["guarantor"]},
        )
        assert resp.status_code == 422 and "不是被查询人本人的微信" in resp.json["message"]
        # another browser coming back with a code meant for the first one's state
        other = browser()
        other.get(f"/auth/{tokens['spouse']}")
        stolen = requests.get(authorize, allow_redirects=False).headers["Location"].removeprefix("http://bank.test")
        assert other.get(stolen).status_code == 400
        with other.session_transaction() as session:
            assert "wechat_openid" not in session
    with unit_of_work(demo_settings.database_url) as s:
        checked = s.scalar(select(ConsentEvidence).where(ConsentEvidence.event == "identity_checked"))
        assert checked.detail["factor"] == "wechat_oauth" and checked.party_role == "applicant"


def test_the_last_consent_queues_the_reports_for_a_worker(
    make_client,
    demo_settings,
    application,
    bureau,
    monkeypatch,
):
    from dataclasses import replace

    from rq import Queue
    from rq.worker import SimpleWorker

    from sunshine.jobs import queue_name
    from sunshine.models import LoanApplication
    from sunshine.redis import connect
    from tests.unit.test_auth_flow import id_digits

    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id, tokens, names = application
    with unit_of_work(settings.database_url) as s:  # the spouse and the guarantor consented earlier
        for auth in s.scalars(
            select(Authorization).where(Authorization.party_role != "applicant").order_by(Authorization.id)
        ):
            auth.status = "consented"
        digits = id_digits(s, tokens["applicant"])
    client = in_wechat(make_client(bureau_url=url), "o_demo_zhangjianguo")
    base = f"/api/authorizations/{tokens['applicant']}"
    assert client.post(f"{base}/identity", json={"name": names["applicant"], "id_digits": digits}).json["ok"]
    assert client.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    assert client.post(f"{base}/face", data=face_form(client, base), content_type="multipart/form-data").json["ok"]
    resp = client.post(f"{base}/consent", json={"agree": True})
    assert resp.json["ok"] and resp.json["status"] == "consented" and resp.json["reports"] == "queued"
    assert "授权成功" in resp.json["message"] and "可以关闭本页面" in resp.json["message"]  # and what happens next
    assert state["queries"] == []  # the request did not wait for the bureau
    connection = connect(settings.redis_url)
    queue = Queue(queue_name(f"application:{app_id}", settings.worker_processes), connection=connection)
    monkeypatch.setattr("auth_flow.reports.current_settings", lambda: settings)
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert len(state["queries"]) == 3
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "under_review"


def test_the_wechat_code_is_made_once_per_token(make_client, demo_settings, application):
    """Each page view showed a new code made at WeChat (quota-limited); now one per token."""
    import requests

    from emulators import serve_in_thread
    from emulators.wechat.api import create_app as wechat_app

    _, tokens, _ = application
    with serve_in_thread(wechat_app(demo_settings)) as wx:
        client = make_client(wechat_api_base=wx)
        images = [client.get(f"/api/authorizations/{tokens['applicant']}/wechat-code.png") for _ in range(3)]
        assert [r.status_code for r in images] == [200] * 3 and len({r.data for r in images}) == 1
        assert len(requests.get(f"{wx}/_emulator/qrcodes").json()) == 1
        assert client.get(f"/api/authorizations/{tokens['spouse']}/wechat-code.png").status_code == 200
        assert len(requests.get(f"{wx}/_emulator/qrcodes").json()) == 2  # another token, its own code
