"""What the fuzzers found, kept as plain regression tests: secrets compared as text of any
script (a non-ASCII CSRF token, OAuth state or ID digits was a 500), and row ids beyond
what the database holds (a 500 from the database driver)."""

from __future__ import annotations

from sqlalchemy import select

from sunshine.db import unit_of_work
from sunshine.models import Authorization
from sunshine.protect import constant_time_equal
from tests.security.test_access import log_in


def test_constant_time_equal_takes_any_text():
    assert constant_time_equal("密码", "密码") and not constant_time_equal("密码", "abc")
    assert not constant_time_equal("", "x")


def test_a_non_ascii_csrf_token_is_a_clear_400(make_client, demo_settings):
    officer = log_in(make_client(), "officer01")
    resp = officer.post("/api/console/hand-offs/1/replies", data={"text": "hi", "csrf": "表单"})
    assert resp.status_code == 400 and resp.json["message"] == "表单已过期，请刷新页面后重试"
    resp = make_client().post("/console/login", data={"username": "officer01", "password": "x", "csrf": "ü"})
    assert resp.status_code == 400


def test_a_non_ascii_oauth_state_is_refused(make_client):
    client = make_client()
    with client.session_transaction() as session:
        session.update(oauth_state="abc", oauth_token="t")
    resp = client.get("/auth/wechat-callback", query_string={"code": "c", "state": "状态"})
    assert resp.status_code == 400 and "微信身份确认失败" in resp.data.decode()


def test_non_ascii_id_digits_are_a_failed_attempt(make_client, demo_settings, application):
    _, tokens, names = application
    client = make_client()
    with client.session_transaction() as session:
        session["wechat_openid"] = "o_demo_zhangjianguo"
    resp = client.post(
        f"/api/authorizations/{tokens['applicant']}/identity",
        json={"name": names["applicant"], "id_digits": "一二三四五六"},
    )
    assert resp.status_code == 422 and resp.json["attempts_left"] == 4
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(Authorization.attempts).where(Authorization.party_role == "applicant")) == 1


def test_ids_beyond_the_database_s_integers_are_404(make_client, demo_settings):
    officer = log_in(make_client(), "officer01")
    for url in (
        "/console/hand-offs/9223372036854775808",
        "/api/console/hand-offs/2147483648/messages",
        "/console/applications/99999999999",
    ):
        assert officer.get(url).status_code == 404, url
    resp = officer.post("/api/console/hand-offs/9223372036854775808/replies", data={"text": "x", "csrf": officer.csrf})
    assert resp.status_code == 404 and resp.json["message"]
