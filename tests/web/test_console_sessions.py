"""Officers' sessions and passwords in the console, through Flask's test client on a real
database and Redis: a copied cookie stops working at logout, idle timeout, end of the
lifetime and password change; a first password must be changed before anything else;
wrong passwords back off per user name and address; private answers are never cached."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from sunshine.clock import travel_to, utcnow
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.models import AuditEntry, Officer, OfficerSession
from sunshine.ratelimit import Backoff
from tests.web.test_console_officers import _application_under_review, csrf_of

NEW_PASSWORD = "春耕秋收-2026-稳"


def log_in(client, username="officer01", password="sunshine-demo", ip="192.0.2.10"):
    client.environ_base["REMOTE_ADDR"] = ip
    token = csrf_of(client.get("/console/login").data)
    return client.post("/console/login", data={"username": username, "password": password, "csrf": token})


def logged_in(make_client, username="officer01", password="sunshine-demo"):
    client = make_client()
    assert log_in(client, username, password).status_code == 302
    client.csrf = csrf_of(client.get("/console").data)
    return client


def copy_of(make_client, client):
    """Another browser holding a copy of `client`'s session cookie (a stolen cookie)."""
    thief = make_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def is_in(client) -> bool:
    api = client.get("/api/console/queue").status_code
    page = client.get("/console")
    assert (api == 200) == (page.status_code == 200), (api, page.status_code)
    if api != 200:
        assert api == 401 and "/console/login" in page.headers["Location"]
    return api == 200


def new_officer(settings, username="officer09", password="initial-pass-1", **kw) -> None:
    with unit_of_work(settings.database_url) as s:
        s.add(
            Officer(
                username=username,
                display_name="孙经理",
                role="officer",
                password_hash=generate_password_hash(password),
                **kw,
            )
        )


def change_password(client, current, new, repeat=None):
    form = {"current": current, "new": new, "repeat": new if repeat is None else repeat, "csrf": client.csrf}
    return client.post("/console/password", data=form)


def test_a_copied_cookie_stops_working_at_logout(make_client, demo_settings):
    officer = logged_in(make_client)
    thief = copy_of(make_client, officer)
    assert is_in(thief)
    officer.post("/console/logout", data={"csrf": officer.csrf})
    assert not is_in(thief) and not is_in(officer)
    with unit_of_work(demo_settings.database_url) as s:
        record = s.scalar(select(OfficerSession))
        assert record.end_reason == "logout" and len(record.token_hash) == 64
        assert record.client_ip == "192.0.2.10"


def test_logout_ends_only_that_session(make_client):
    here, there = logged_in(make_client), logged_in(make_client)
    here.post("/console/logout", data={"csrf": here.csrf})
    assert not is_in(here) and is_in(there)


def test_a_session_ends_after_the_idle_time_and_use_keeps_it_alive(make_client, demo_settings):
    idle = timedelta(seconds=demo_settings.console_session_idle_s)
    officer = logged_in(make_client)
    thief = copy_of(make_client, officer)
    start = utcnow()
    with travel_to(start + idle - timedelta(minutes=1)):
        assert is_in(officer)  # used: the idle time starts again
    with travel_to(start + 2 * idle - timedelta(minutes=2)):
        assert is_in(thief)
    with travel_to(start + 3 * idle):
        assert not is_in(thief) and not is_in(officer)
    assert not is_in(officer)  # ended for good, even back at an earlier time
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(OfficerSession.end_reason)) == "idle"


def test_the_pages_polls_do_not_keep_an_unattended_console_alive(make_client, demo_settings):
    idle = timedelta(seconds=demo_settings.console_session_idle_s)
    officer = logged_in(make_client)
    start = utcnow()
    for minutes in range(5, int(idle.total_seconds() // 60), 5):
        with travel_to(start + timedelta(minutes=minutes)):
            assert officer.get("/api/console/changes").status_code == 200
            assert officer.get("/console/queue/rows").status_code == 200
    with travel_to(start + idle + timedelta(seconds=1)):
        assert officer.get("/api/console/changes").status_code == 401


def test_a_session_ends_after_its_lifetime_however_much_it_is_used(make_client, demo_settings):
    lifetime = timedelta(seconds=demo_settings.console_session_max_s)
    step = timedelta(seconds=demo_settings.console_session_idle_s // 2)
    officer = logged_in(make_client)
    start, at = utcnow(), utcnow()
    while at + step < start + lifetime:
        at += step
        with travel_to(at):
            assert is_in(officer)
    with travel_to(start + lifetime + timedelta(seconds=1)):
        assert not is_in(officer)
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(OfficerSession.end_reason)) == "expired"


def test_a_password_change_ends_every_session_and_copies_of_this_one(make_client, demo_settings):
    officer, elsewhere = logged_in(make_client), logged_in(make_client)
    thief = copy_of(make_client, officer)
    resp = change_password(officer, "sunshine-demo", NEW_PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/console"
    assert "密码已修改" in officer.get("/console").data.decode()
    assert is_in(officer)  # this browser goes on in a new session
    assert not is_in(thief) and not is_in(elsewhere)
    assert log_in(make_client(), password="sunshine-demo").status_code == 401
    assert log_in(make_client(), password=NEW_PASSWORD).status_code == 302
    with unit_of_work(demo_settings.database_url) as s:
        o = s.scalar(select(Officer).where(Officer.username == "officer01"))
        assert check_password_hash(o.password_hash, NEW_PASSWORD) and o.password_changed_at is not None
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "console.password_changed"))
        assert entry.detail == {"sessions_ended": 2}
        reasons = s.scalars(select(OfficerSession.end_reason).order_by(OfficerSession.id)).all()
        assert reasons == ["password_changed", "password_changed", None, None]


@pytest.mark.parametrize(
    "current,new,repeat,message",
    [
        ("wrong-password", NEW_PASSWORD, None, "当前密码不对"),
        ("sunshine-demo", "short-1", None, "至少要10位"),
        ("sunshine-demo", "my-officer01-pass", None, "不能包含用户名"),
        ("sunshine-demo", "MY-OFFICER01-PASS", None, "不能包含用户名"),
        ("sunshine-demo", NEW_PASSWORD, NEW_PASSWORD + "x", "两次输入的新密码不一样"),
    ],
)
def test_a_password_that_breaks_the_rules_is_refused_and_changes_nothing(
    make_client, demo_settings, current, new, repeat, message
):
    officer = logged_in(make_client)
    resp = change_password(officer, current, new, repeat)
    assert resp.status_code == 400 and message in resp.data.decode()
    assert is_in(officer) and log_in(make_client()).status_code == 302


def test_the_new_password_cannot_be_the_old_one(make_client, demo_settings):
    new_officer(demo_settings, password="initial-pass-1")
    client = make_client()
    log_in(client, "officer09", "initial-pass-1")
    client.csrf = csrf_of(client.get("/console/password").data)
    resp = change_password(client, "initial-pass-1", "initial-pass-1")
    assert resp.status_code == 400 and "不能和原来的密码一样" in resp.data.decode()


def test_an_officer_with_a_first_password_must_change_it_before_anything_else(make_client, demo_settings):
    new_officer(demo_settings)  # created with a password someone gave them: must change it
    app_id = _application_under_review(demo_settings)
    client = make_client()
    resp = log_in(client, "officer09", "initial-pass-1")
    assert resp.status_code == 302 and resp.headers["Location"] == "/console/password"
    page = client.get("/console/password").data.decode()
    assert "初始密码" in page
    client.csrf = csrf_of(page.encode())
    for url in ("/console", f"/console/applications/{app_id}"):
        resp = client.get(url)
        assert resp.status_code == 302 and resp.headers["Location"] == "/console/password", url
    resp = client.get("/api/console/queue")
    assert resp.status_code == 403 and resp.json["message"] == "请先修改初始密码"
    assert client.post("/console/hand-offs/1/claim", data={"csrf": client.csrf}).status_code == 302
    assert change_password(client, "initial-pass-1", NEW_PASSWORD).status_code == 302
    assert client.get("/console").status_code == 200
    with unit_of_work(demo_settings.database_url) as s:
        assert not s.scalar(select(Officer.must_change_password).where(Officer.username == "officer09"))


def test_the_demo_officers_need_no_change(demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalars(select(Officer.must_change_password).order_by(Officer.id)).all() == [False, False]


def test_wrong_passwords_back_off_for_that_address_only(make_client, demo_settings):
    guesser = make_client()
    for _ in range(demo_settings.login_backoff_after):
        assert log_in(guesser, password="guess", ip="198.51.100.40").status_code == 401
    resp = log_in(guesser, ip="198.51.100.40")  # even the right password, from there
    assert resp.status_code == 429 and "密码错误次数太多，请1分钟后再试" in resp.data.decode()
    assert int(resp.headers["Retry-After"]) == demo_settings.login_backoff_base_s
    # The officer at their own desk is not locked out by a stranger, and nor is anyone else.
    assert log_in(make_client(), ip="192.0.2.10").status_code == 302
    assert log_in(make_client(), "supervisor01", ip="198.51.100.40").status_code == 302
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count(OfficerSession.id))) == 2


def test_the_back_off_doubles_with_each_further_failure_and_a_success_clears_it(redis_url):
    now = [1000.0]
    backoff = Backoff(redis_url, "t", after=3, base_s=60, max_s=300, clock=lambda: now[0])
    assert [backoff.fail("u|a") for _ in range(5)] == [0, 0, 60, 120, 240]
    assert backoff.retry_after("u|a") == 240 and backoff.retry_after("u|b") == 0
    now[0] += 239.5
    assert backoff.retry_after("u|a") == 1
    now[0] += 0.5
    assert backoff.retry_after("u|a") == 0
    assert backoff.fail("u|a") == 300  # never longer than max_s
    backoff.clear("u|a")
    assert backoff.retry_after("u|a") == 0 and backoff.fail("u|a") == 0


def test_redis_down_or_unset_backs_nothing_off():
    for url in ("redis://127.0.0.1:1/0", ""):
        backoff = Backoff(url, "t", after=1, base_s=60, max_s=60)
        assert backoff.fail("u|a") == 0 and backoff.retry_after("u|a") == 0
        backoff.clear("u|a")


@pytest.mark.parametrize("broken_url", ["", "redis://127.0.0.1:1/0", "redis://127.0.0.1:6379/db-seven"])
def test_a_misconfigured_or_unreachable_redis_never_turns_a_login_into_a_500(make_client, demo_settings, broken_url):
    """The login's back-off and rate limit live in Redis: without it they cost nothing (logged)
    and the login itself works; a wrong password is still refused."""
    jobs = Jobs(demo_settings)  # the app's queue as started: only the login's REDIS_URL is broken
    assert log_in(make_client(jobs=jobs, redis_url=broken_url), password="wrong").status_code == 401
    assert log_in(make_client(jobs=jobs, redis_url=broken_url)).status_code == 302


def test_redis_failing_in_a_console_request_gets_a_chinese_page_not_a_500(make_client, demo_settings):
    broken = Jobs(replace(demo_settings, redis_url="redis://127.0.0.1:1/0"))
    client = make_client(jobs=broken)
    client.application.add_url_rule("/console/_enqueue", view_func=lambda: broken.enqueue("k", "x.y") or "")
    resp = client.get("/console/_enqueue")
    assert resp.status_code == 503 and "连不上缓存服务" in resp.text and resp.headers["Retry-After"] == "30"


def test_private_answers_are_never_cached(make_client, demo_settings):
    officer = logged_in(make_client)
    app_id = _application_under_review(demo_settings)
    for resp in (
        officer.get("/console"),
        officer.get(f"/console/applications/{app_id}"),
        officer.get("/console/password"),
        officer.get("/api/console/queue"),
        make_client().get("/api/console/queue"),  # a refusal too
        make_client().get("/console/login"),
        make_client().get("/api/authorizations/unknown"),
    ):
        assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Pragma"] == "no-cache"
    assert "no-store" not in make_client().get("/healthz").headers.get("Cache-Control", "")
