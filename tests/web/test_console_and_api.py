import re
from datetime import timedelta

from auth_flow.tokens import issue
from handoff.service import request_hand_off
from lending.customers import by_openid
from sunshine.db import unit_of_work


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def login(client, username="officer01", password="sunshine-demo"):
    token = csrf_of(client.get("/console/login").data)
    return client.post("/console/login", data={"username": username, "password": password, "csrf": token})


def test_console_needs_login(make_client):
    resp = make_client().get("/console")
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]


def test_wrong_password_and_missing_csrf_are_refused(make_client):
    client = make_client()
    assert login(client, password="wrong").status_code == 401
    resp = client.post("/console/login", data={"username": "officer01", "password": "sunshine-demo"})
    assert resp.status_code == 400 and "表单已过期".encode() in resp.data


def test_officer_sees_own_and_branch_hand_offs_escaped(make_client, demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        request_hand_off(
            s, "o_demo_zhangjianguo", "customer_request", {"recent_messages": ["<script>alert(1)</script>"]}
        )
        request_hand_off(s, "o_stranger", "not_understood")
    client = make_client()
    assert login(client).status_code == 302
    page = client.get("/console").data.decode()
    assert "张建国" in page and "未绑定客户" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    resp = client.post("/console/logout", data={"csrf": csrf_of(page.encode())})
    assert resp.status_code == 302 and client.get("/console").status_code == 302


def test_authorization_api_page_and_qr(make_client, demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        token = issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30)).token
    client = make_client()
    body = client.get(f"/api/authorizations/{token}").json
    # before identity: nothing the check asks (the full name, the last 6) is shown
    assert body["party_name"] == "张*国" and body["party_id_masked"] == "3212**************"
    qr = client.get(f"/api/authorizations/{token}/qr.png")
    assert qr.status_code == 200 and qr.data[:4] == b"\x89PNG"
    assert client.get(f"/auth/{token}").status_code == 302  # first WeChat's web authorization
    with client.session_transaction() as session:
        session["wechat_openid"] = "o_demo_zhangjianguo"
    page = client.get(f"/auth/{token}").data.decode()
    assert "张*国" in page and "张建国" not in page and "0119" not in page


def test_unknown_token_is_a_clear_404(make_client):
    client = make_client()
    resp = client.get("/api/authorizations/nope")
    assert resp.status_code == 404 and resp.json["message"] == "授权码无效，请向客户经理重新获取"
    assert client.get("/auth/nope").status_code == 404
    assert client.get("/api/authorizations/nope/qr.png").status_code == 404


def test_openapi_and_health(make_client):
    client = make_client()
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/api/authorizations/{token}" in spec["paths"]
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["redis"] == "ok" and ready.json["checks"]["rasa"].startswith("unavailable")
    assert client.get("/metrics").status_code == 200
