"""The authorization API as the H5 page calls it: bad input and attacks are refused
with a clear message, recorded, and query no report."""
from __future__ import annotations

import io

from sqlalchemy import select

from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, CreditReportRecord
from tests.unit import auth_media as media
from tests.unit.test_auth_flow import application  # noqa: F401  (fixture)


def frames_form(frames):
    return {"frames": [(io.BytesIO(f), f"f{i}.jpg") for i, f in enumerate(frames)]}


def test_bad_input_and_attacks_are_refused_and_recorded(make_client, demo_settings, application):  # noqa: F811
    client = make_client()
    _, tokens, names = application
    token = tokens["guarantor"]
    base = f"/api/authorizations/{token}"
    page = client.get(f"/auth/{token}").data.decode()
    assert "身份证号后6位" in page and "人脸" in page
    assert client.get(base).json["steps"] == {"identity": False, "biometric_consent": False, "face": False}
    # consent and face without the earlier steps
    resp = client.post(f"{base}/consent", json={"agree": True})
    assert resp.status_code == 409 and "人脸核验" in resp.json["message"]
    resp = client.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 409
    assert client.post(f"{base}/identity", data="x", content_type="text/plain").status_code == 400
    assert client.post(f"{base}/identity", json={"name": names["guarantor"]}).status_code == 400
    resp = client.post(f"{base}/identity", json={"name": names["guarantor"], "id_digits": "999999"})
    assert resp.status_code == 422 and resp.json["attempts_left"] == 4
    # a forged token
    resp = client.post("/api/authorizations/forged/identity", json={"name": "x", "id_digits": "123456"})
    assert resp.status_code == 404 and "无效" in resp.json["message"]
    # a 50 MB upload is refused before it is read
    resp = client.post(f"{base}/face", data=b"0" * (50 * 1024 * 1024),
                       content_type="multipart/form-data; boundary=x")
    assert resp.status_code == 413 and "太大" in resp.json["message"]
    assert client.post(f"{base}/face", data={}, content_type="multipart/form-data").status_code == 400
    with unit_of_work(demo_settings.database_url) as s:
        events = [e.event for e in s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id))]
        assert events == ["refused", "refused", "identity_failed"]
        assert s.scalar(select(Authorization.attempts).where(Authorization.party_role == "guarantor")) == 1
        assert s.scalars(select(CreditReportRecord)).all() == []


def test_a_non_image_upload_counts_as_a_failed_attempt(make_client, demo_settings, application):  # noqa: F811
    from sunshine.models import Customer
    from sunshine.protect import unseal
    from tests.conftest import TEST_SECRET

    client = make_client()
    _, tokens, names = application
    base = f"/api/authorizations/{tokens['spouse']}"
    with unit_of_work(demo_settings.database_url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "spouse"))
        digits = unseal(TEST_SECRET, s.get(Customer, auth.party_customer_id).id_sealed)[-6:]
    assert client.post(f"{base}/identity", json={"name": names["spouse"], "id_digits": digits}).json["ok"]
    assert client.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    resp = client.post(f"{base}/face", data=frames_form([b"%PDF-1.4"] * 3), content_type="multipart/form-data")
    assert resp.status_code == 422 and "不是照片" in resp.json["message"]
    resp = client.post(f"{base}/face", data=frames_form(media.live_frames()), content_type="multipart/form-data")
    assert resp.status_code == 200 and resp.json["face"]["decision"] == "pass"


def test_openapi_lists_every_authorization_endpoint(make_client):
    paths = make_client().get("/api/openapi.json").json["paths"]
    for suffix in ("", "/qr.png", "/wechat-code.png", "/identity", "/biometric-consent", "/face", "/consent"):
        assert f"/api/authorizations/{{token}}{suffix}" in paths
