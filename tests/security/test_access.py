"""Who may call what, driven by the app's own url_map: every route is classified, so a new
route fails here until it is; every console route refuses an anonymous caller, and every
route about one hand-off, message or application refuses an officer it does not belong to."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from auth_flow import faces
from handoff import service as h
from sunshine.db import unit_of_work
from sunshine.models import (
    AuditEntry,
    Authorization,
    ConversationMessage,
    Customer,
    FaceReference,
    FaceReview,
    HandOff,
    LoanApplication,
    LoanContract,
    Officer,
    utcnow,
)
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from webhooks import create_app

# Routes anyone may call: WeChat's (signed, tested in tests/web/test_wechat*.py and test_wxa_push.py), health, the
# spec, the login page, static files, the mini-program's login and its scenario answers. Token
# routes: the token in the path is the credential. Mini-program routes: the bearer token of
# /api/mp/login is (tests/web/test_mp_api.py, and below).
PUBLIC = {
    "mp.login",
    "mp.service",
    "wechat.verify_url",
    "wechat.receive",
    "wxa_push.verify_url",
    "wxa_push.receive",
    "health.healthz",
    "health.readyz",
    "health.metrics",
    "api.openapi",
    "console.login",
    "console.login_submit",
    "console.logout",
    "console.static",
    "static",
    "api.authorization_wechat_callback",
}
TOKEN = ("api.", "contracts.")
BEARER = "mp."
LOGIN = ("console.", "console_api.")
# Which object a path parameter names, for the wrong-officer requests.
OBJECTS = {"hand_off_id", "application_id", "message_id", "authorization_id", "customer_id", "review_id"}


def rules(app):
    return [r for r in app.url_map.iter_rules()]


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def log_in(client, username):
    token = csrf_of(client.get("/console/login").data)
    resp = client.post("/console/login", data={"username": username, "password": "sunshine-demo", "csrf": token})
    assert resp.status_code == 302, resp.data[:200]
    client.csrf = csrf_of(client.get("/console").data)
    return client


@pytest.fixture
def others(demo_settings):
    """officer02 with a customer, an open hand-off, an undelivered message and an application
    awaiting review: objects officer01 must not reach and a supervisor may."""
    with unit_of_work(demo_settings.database_url) as s:
        officer = Officer(
            username="officer02",
            display_name="王经理",
            role="officer",
            password_hash=generate_password_hash("sunshine-demo"),
        )
        s.add(officer)
        s.flush()
        customer = s.scalar(
            select(Customer).where(Customer.wechat_openid.is_not(None), Customer.wechat_openid != "o_demo_zhangjianguo")
        )
        customer.officer_id = officer.id
        hand_off, _ = h.request_hand_off(s, customer.wechat_openid, "customer_request")
        hand_off.officer_id, hand_off.status = officer.id, "claimed"
        message = h.officer_reply(s, hand_off, officer, "您好")
        message.status, message.errcode = "undelivered", 45015
        application = LoanApplication(
            customer_id=customer.id,
            product_code="sunshine_e_loan",
            amount=50000,
            term_months=12,
            purpose="买化肥",
            status="under_review",
            review_mode="officer",
            review_deadline=utcnow() + timedelta(hours=3),
        )
        s.add(application)
        s.flush()
        locked = Authorization(
            application_id=application.id,
            customer_id=customer.id,
            party_role="applicant",
            party_name=customer.name,
            party_id_masked=customer.id_masked,
            purpose="贷款审批",
            requested_by="bot",
            token_hash="0" * 64,
            expires_at=utcnow() + timedelta(minutes=30),
            status="locked",
        )
        s.add(locked)
        s.flush()
        photo = faces.seal_image(TEST_SECRET, media.reference())
        reference = FaceReference(
            customer_id=customer.id,
            encoding_sealed="-",
            image_sha256="0" * 64,
            source="officer",
            enrolled_by="officer02",
            photo_sealed=photo,
        )
        s.add(reference)
        s.flush()
        review = FaceReview(authorization_id=locked.id, reference_id=reference.id, face={}, frames_sealed=[photo])
        s.add(review)
        pdf = b"%PDF-1.4 a signed contract"
        s.add(  # the application's signed loan contract (its PDF is a console route too)
            LoanContract(
                application_id=application.id,
                token_hash="1" * 64,
                status="signed",
                version="2026.1",
                party_name=customer.name,
                party_id_masked=customer.id_masked,
                expires_at=utcnow() + timedelta(hours=72),
                signed_at=utcnow(),
                proof={"factor": "wechat_oauth"},
                pdf=pdf,
                pdf_sha256=hashlib.sha256(pdf).hexdigest(),
            )
        )
        s.flush()
        return {
            "authorization_id": locked.id,
            "review_id": review.id,
            "hand_off_id": hand_off.id,
            "message_id": message.id,
            "application_id": application.id,
            "customer_id": customer.id,
            "officer_id": officer.id,
        }


def state(settings) -> tuple:
    """What a refused request must not change."""
    with unit_of_work(settings.database_url) as s:
        return (
            s.scalar(select(func.count(AuditEntry.id))),
            s.scalar(select(func.count(ConversationMessage.id))),
            tuple(s.scalars(select(HandOff.status).order_by(HandOff.id))),
            tuple(s.scalars(select(LoanApplication.status).order_by(LoanApplication.id))),
            tuple(s.scalars(select(Authorization.status).order_by(Authorization.id))),
            tuple(s.scalars(select(FaceReview.status).order_by(FaceReview.id))),
        )


def requests_for(app, values):
    """(method, url, rule) for every console route, path parameters filled from `values` (others,
    e.g. a face review's frame index, with 0)."""
    adapter = app.url_map.bind("bank.test")
    for rule in rules(app):
        if not rule.endpoint.startswith(LOGIN) or rule.endpoint in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, adapter.build(rule.endpoint, {a: values.get(a, 0) for a in rule.arguments}), rule


def test_every_route_is_classified(demo_settings):
    app = create_app(demo_settings)
    unclassified = [
        r.rule
        for r in rules(app)
        if r.endpoint not in PUBLIC
        and not r.endpoint.startswith(LOGIN)
        and not (r.endpoint.startswith(TOKEN) and "token" in r.arguments)
        and not r.endpoint.startswith(BEARER)
    ]
    assert unclassified == []
    assert sum(1 for _ in requests_for(app, dict.fromkeys(OBJECTS, 1))) >= 15


def test_every_mini_program_route_refuses_a_caller_without_a_session_and_changes_nothing(make_client, demo_settings):
    client = make_client()
    before = state(demo_settings)
    seen = 0
    for rule in rules(client.application):
        if not rule.endpoint.startswith(BEARER) or rule.endpoint in PUBLIC:
            continue
        url = re.sub(r"<[^>]+>", "1", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for headers in ({}, {"Authorization": "Bearer forged"}):
                resp = client.open(url, method=method, json={"text": "hi", "code": "1"}, headers=headers)
                assert resp.status_code == 401 and resp.json["code"] in ("login_required", "session_invalid")
                seen += 1
    assert seen >= 24 and state(demo_settings) == before


def test_anonymous_callers_get_the_login_page_or_401_and_change_nothing(make_client, demo_settings, others):
    client = make_client()
    before = state(demo_settings)
    seen = 0
    for method, url, rule in requests_for(client.application, others):
        resp = client.open(url, method=method, data={"text": "hi", "decision": "approve", "reason": "x"})
        if rule.endpoint.startswith("console_api."):
            assert resp.status_code == 401 and resp.json["message"] == "请先登录", (method, url)
        else:
            assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], (method, url)
        seen += 1
    assert seen >= 15 and state(demo_settings) == before


def test_an_officer_gets_403_on_every_route_about_another_officers_objects(make_client, demo_settings, others):
    officer = log_in(make_client(), "officer01")
    before = state(demo_settings)
    checked = []
    for method, url, rule in requests_for(officer.application, others):
        if not set(rule.arguments) & OBJECTS:
            continue
        resp = officer.open(
            url,
            method=method,
            data={"csrf": officer.csrf, "text": "hi", "decision": "approve", "reason": "x", "officer_id": "1"},
        )
        assert resp.status_code == 403, (method, url, resp.status_code)
        checked.append(rule.endpoint)
    assert len(checked) >= 10 and state(demo_settings)[1:] == before[1:]  # the login's audit entry aside
    supervisor = log_in(make_client(), "supervisor01")
    for method, url, rule in requests_for(supervisor.application, others):
        if method == "GET" and set(rule.arguments) & OBJECTS:
            assert supervisor.get(url).status_code == 200, url


def test_an_officer_sees_only_own_and_branch_work_whatever_the_filter_says(make_client, demo_settings, others):
    officer = log_in(make_client(), "officer01")
    for query in ("", f"?officer={others['officer_id']}"):
        queue = officer.get(f"/api/console/queue{query}").json
        assert others["hand_off_id"] not in [x["id"] for x in queue["hand_offs"]]
        assert others["application_id"] not in [x["id"] for x in queue["applications"]]
        page = officer.get(f"/console{query}").data.decode()
        assert f'data-hand-off="{others["hand_off_id"]}"' not in page
    supervisor = log_in(make_client(), "supervisor01").get(f"/api/console/queue?officer={others['officer_id']}").json
    assert [x["id"] for x in supervisor["hand_offs"]] == [others["hand_off_id"]]
    assert [x["id"] for x in supervisor["applications"]] == [others["application_id"]]


def test_a_deactivated_officer_is_logged_out_at_the_next_request(make_client, demo_settings):
    officer = log_in(make_client(), "officer01")
    assert officer.get("/api/console/queue").status_code == 200
    with unit_of_work(demo_settings.database_url) as s:
        s.scalar(select(Officer).where(Officer.username == "officer01")).active = False
    assert officer.get("/api/console/queue").status_code == 401
    assert officer.get("/console").status_code == 302


def test_every_token_route_answers_an_unknown_token_with_404_and_a_message(make_client):
    client = make_client()
    adapter = client.application.url_map.bind("bank.test")
    seen = 0
    for rule in rules(client.application):
        if not rule.endpoint.startswith(TOKEN) or "token" not in rule.arguments:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, {"token": "x" * 32})
            if rule.endpoint in ("api.authorization_face", "contracts.contract_face"):  # frames: well-formed
                resp = client.post(
                    url, data={"frames": (io.BytesIO(b"\xff\xd8"), "f.jpg")}, content_type="multipart/form-data"
                )
            else:  # a well-formed body: only the token is wrong
                body = {"name": "张三", "id_digits": "123456", "agree": True, "text_sha256": "0" * 64}
                resp = client.open(url, method=method, json=body)
            assert resp.status_code == 404, (method, rule.rule, resp.status_code)
            assert ("合同链接无效" if rule.endpoint.startswith("contracts.") else "授权码无效") in resp.data.decode()
            seen += 1
    assert seen >= 14


def test_an_officer_gets_403_on_every_administration_route_recorded_and_nothing_else_changes(
    make_client, demo_settings, others
):
    """Every supervisors' route (`console.admin_*`), whatever its parameters and form say."""
    officer = log_in(make_client(), "officer01")
    before = state(demo_settings)
    values = {"officer_id": others["officer_id"], "station_id": 1, "entry_id": 1}
    form = {"csrf": officer.csrf, "username": "mole", "display_name": "内鬼", "role": "supervisor", "code": "HQ009"}
    form |= {"name": "站", "village": "黄桥村", "id_number": "321283197503120119", "reason": "x", "officer_id": "1"}
    checked = []
    for method, url, rule in requests_for(officer.application, values):
        if not rule.endpoint.startswith("console.admin_"):
            continue
        resp = officer.open(url, method=method, data=form)
        assert resp.status_code == 403 and "只有主管可以进行管理操作" in resp.data.decode(), (method, url)
        checked.append(rule.endpoint)
    assert len(checked) >= 14
    with unit_of_work(demo_settings.database_url) as s:
        refused = s.scalar(select(func.count()).where(AuditEntry.action == "admin.refused"))
        assert s.scalar(select(func.count()).select_from(Officer)) == 3  # the demo's two and officer02
    assert refused == len(checked) and state(demo_settings)[0] == before[0] + refused
    assert state(demo_settings)[1:] == before[1:]
