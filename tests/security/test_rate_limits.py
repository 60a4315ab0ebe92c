"""Rate limits (sunshine.ratelimit, in Redis): console logins, face uploads and look-ups of
unknown authorization tokens, each answered with 429, a Chinese message and Retry-After."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from auth_flow.tokens import issue
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, ConsentEvidence
from sunshine.ratelimit import FACE_ATTEMPTS, LOGIN_FAILURES_BY_CLIENT, TOKEN_LOOKUPS, Limit, Limiter


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def a_token(settings) -> str:
    with unit_of_work(settings.database_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        return issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30)).token


def from_ip(client, ip):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def test_the_limiter_counts_per_client_and_window(redis_url):
    limiter, limit = Limiter(redis_url), Limit("t", 3, 60, "太多")
    assert [limiter.hit(limit, "a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.hit(limit, "a")
    assert 1 <= wait <= 60 and limiter.retry_after(limit, "a") == wait
    assert limiter.retry_after(limit, "b") == 0  # another client
    limiter.clear(limit, "a")
    assert limiter.retry_after(limit, "a") == 0


def test_redis_down_limits_nothing():
    limiter = Limiter("redis://127.0.0.1:1/0")
    assert limiter.hit(TOKEN_LOOKUPS, "x") == 0 and limiter.retry_after(TOKEN_LOOKUPS, "x") == 0


def test_a_client_guessing_tokens_is_stopped_even_for_a_real_token_others_are_not(make_client, demo_settings):
    token = a_token(demo_settings)
    guesser = from_ip(make_client(), "198.51.100.7")
    for i in range(TOKEN_LOOKUPS.limit):
        resp = guesser.get(f"/api/authorizations/guess{i:04d}")
        assert resp.status_code == 404
    for url in (f"/api/authorizations/{token}", "/api/authorizations/guess-more", f"/auth/{token}"):
        resp = guesser.get(url)
        assert resp.status_code == 429 and "尝试次数太多" in resp.data.decode(), url
        assert 1 <= int(resp.headers["Retry-After"]) <= TOKEN_LOOKUPS.window_s
    resp = guesser.post(f"/api/authorizations/{token}/identity", json={"name": "张建国", "id_digits": "120119"})
    assert resp.status_code == 429 and resp.json["message"] == TOKEN_LOOKUPS.message
    # a client that only opened its own link is not affected, and neither is the token
    assert from_ip(make_client(), "203.0.113.9").get(f"/api/authorizations/{token}").status_code == 200
    with unit_of_work(demo_settings.database_url) as s:  # the blocked POST reached nothing
        assert s.scalar(select(func.count(ConsentEvidence.id))) == 0


def test_the_limit_is_per_real_address_a_forged_x_forwarded_for_does_not_reset_it(make_client, demo_settings):
    guesser = from_ip(make_client(), "198.51.100.8")
    for i in range(TOKEN_LOOKUPS.limit):
        guesser.get(f"/api/authorizations/guess{i:04d}", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    assert guesser.get("/api/authorizations/x", headers={"X-Forwarded-For": "10.9.9.9"}).status_code == 429
    # behind a trusted proxy, the address it reports is the client's
    proxied = from_ip(make_client(trusted_proxies=1), "192.0.2.1")
    assert proxied.get("/api/authorizations/x", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 429
    assert proxied.get("/api/authorizations/x", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 404


def test_face_uploads_are_limited_per_link_not_per_address(make_client, demo_settings):
    token, neighbour = a_token(demo_settings), a_token(demo_settings)
    client = from_ip(make_client(), "198.51.100.20")
    url = f"/api/authorizations/{token}/face"
    for _ in range(FACE_ATTEMPTS.limit):  # out of order (no identity yet): refused, but counted
        resp = client.post(url, data={"frames": (io.BytesIO(b"x"), "f.jpg")}, content_type="multipart/form-data")
        assert resp.status_code == 409
    resp = client.post(url, data={"frames": (io.BytesIO(b"x"), "f.jpg")}, content_type="multipart/form-data")
    assert resp.status_code == 429 and resp.json["message"] == "刷脸次数太多，请稍后再试"
    assert int(resp.headers["Retry-After"]) >= 1
    # another address does not reset the link's count ...
    other = from_ip(make_client(), "203.0.113.20")
    resp = other.post(url, data={"frames": (io.BytesIO(b"x"), "f.jpg")}, content_type="multipart/form-data")
    assert resp.status_code == 429
    # ... and another party's link on the same village Wi-Fi (one address) is not limited by it
    resp = client.post(
        f"/api/authorizations/{neighbour}/face",
        data={"frames": (io.BytesIO(b"x"), "f.jpg")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 409


def test_wrong_passwords_from_one_address_across_user_names_are_stopped(make_client, demo_settings):
    client = from_ip(make_client(), "198.51.100.30")

    def attempt(username, password):
        token = csrf_of(client.get("/console/login").data)
        return client.post("/console/login", data={"username": username, "password": password, "csrf": token})

    for i in range(LOGIN_FAILURES_BY_CLIENT.limit):
        assert attempt(f"user{i}", "guess").status_code == 401
    resp = attempt("officer01", "sunshine-demo")  # even the right password, from this address
    assert resp.status_code == 429 and "登录失败次数太多" in resp.data.decode()
    assert 1 <= int(resp.headers["Retry-After"]) <= LOGIN_FAILURES_BY_CLIENT.window_s
    other = from_ip(make_client(), "203.0.113.30")
    token = csrf_of(other.get("/console/login").data)
    assert (
        other.post(
            "/console/login", data={"username": "officer01", "password": "sunshine-demo", "csrf": token}
        ).status_code
        == 302
    )
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "console.login")) == 1


def test_a_locked_user_name_says_when_to_come_back(make_client):
    client = make_client()
    for _ in range(5):
        token = csrf_of(client.get("/console/login").data)
        client.post("/console/login", data={"username": "officer01", "password": "guess", "csrf": token})
    token = csrf_of(client.get("/console/login").data)
    resp = client.post("/console/login", data={"username": "officer01", "password": "sunshine-demo", "csrf": token})
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 15 * 60
