"""Bad configuration stops start-up with one clear line, not a traceback."""

import os
import socket
import subprocess
import sys

import pytest

from sunshine.launcher import (
    DUTY_ROLES,
    NODE_ROLES,
    ROLES,
    StartupError,
    child_env,
    load_settings,
    parse_roles,
    rasa_endpoints,
    services,
)
from sunshine.settings import DEMO_CHALLENGE_ORDER, ROOT, Settings
from tests.conftest import SERVICE_ADDRESSES, free_port


def check(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    # free ports, not the defaults that a `make run` on this machine holds
    ports = {name.upper(): f"http://127.0.0.1:{free_port()}" for name in SERVICE_ADDRESSES}
    ports.update(WEB_PORT=str(free_port()), PRIVATE_REDIS_PORT=str(free_port()))
    full.update({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **ports, **env})
    return subprocess.run(
        [sys.executable, "-m", "sunshine.launcher", "check"],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, words",
    [
        ({"WECHAT_AES_KEY": "abc"}, "WECHAT_AES_KEY must be the 43-character EncodingAESKey"),
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}, "cannot reach DATABASE_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "cannot reach REDIS_URL"),
        # failover forms: no Sentinel answers (its password not shown), no listed database host answers
        (
            {"REDIS_URL": "redis+sentinel://:pw@127.0.0.1:1/main/0"},
            "REDIS_URL=redis+sentinel://:***@127.0.0.1:1/main/0",
        ),
        ({"REDIS_URL": "redis+sentinel://127.0.0.1:1/"}, "name the master"),
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1,127.0.0.1:2/nothing"}, "cannot reach DATABASE_URL"),
        ({"FACE_CHALLENGE_DEMO_ORDER": "left,right,nod"}, "FACE_CHALLENGE_DEMO_ORDER is set but SUNSHINE_DEMO is off"),
    ],
)
def test_bad_configuration_is_one_line(tmp_path, env, words):
    result = check(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_port_in_use_is_named(tmp_path, redis_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = check(tmp_path, WEB_PORT=str(port), REDIS_URL=redis_url)
    assert result.returncode == 2
    assert f"port {port} (web) is already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_rasa_endpoints_use_the_shared_redis():
    text = rasa_endpoints(Settings(redis_url="redis://:pw@10.0.0.5:6380/3", action_server_url="http://a:5055"))
    assert "url: http://a:5055/webhook" in text
    assert text.count('url: "redis://:pw@10.0.0.5:6380/3"') == 2
    assert "type: bot.tracker_store.RedisTrackerStore" in text and "type: bot.lock_store.RedisLockStore" in text


def test_services_skip_remote_hosts():
    names = [
        s.name
        for s in services(
            Settings(
                wechat_api_base="https://api.weixin.qq.com",
                bureau_url="https://bureau.example",
                core_banking_url="https://core.bank.example",
                wecom_api_base="https://qyapi.weixin.qq.com",
                sms_api_base="https://sms.example",
                faceid_url="https://faceid.tencentcloudapi.com",
            )
        )
    ]
    assert names == [
        "web",
        "rasa",
        "actions",
        "worker.0",
        "worker.1",
        "worker.2",
        "worker.3",
        "duties",
    ]


def test_the_core_banking_emulator_starts_when_its_url_is_local():
    names = {s.name: s for s in services(Settings())}
    assert names["corebank-emulator"].command[-3:] == ["emulators.corebank", "--port", "8500"]


def test_the_face_verification_emulator_starts_with_the_certified_engine_when_its_url_is_local():
    assert "faceid-emulator" not in {s.name for s in services(Settings())}  # the local engine calls no service
    names = {s.name: s for s in services(Settings(face_engine="certified"))}
    assert names["faceid-emulator"].port == 8600
    assert names["faceid-emulator"].command[-3:] == ["emulators.faceid", "--port", "8600"]


def test_the_demo_switch_brings_the_demo_challenge_order_to_the_services(monkeypatch):
    """`make run` (--demo): the web process gets SUNSHINE_DEMO and the fixed order; without: neither."""
    demo = child_env(Settings(sunshine_demo=True, face_challenge_demo_order=DEMO_CHALLENGE_ORDER))
    assert demo["SUNSHINE_DEMO"] == "1" and demo["FACE_CHALLENGE_DEMO_ORDER"] == "left,right,mouth"
    plain = child_env(Settings())
    assert plain["SUNSHINE_DEMO"] == "0" and plain["FACE_CHALLENGE_DEMO_ORDER"] == ""


def test_make_runs_demo_switch_sets_the_demo_order_unless_told_otherwise(tmp_path):
    none = tmp_path / "no.env"
    assert load_settings(True, env={}, dotenv=none).face_challenge_demo_order == "left,right,mouth"
    assert load_settings(True, env={"FACE_CHALLENGE_DEMO_ORDER": ""}, dotenv=none).face_challenge_demo_order == ""
    chosen = load_settings(True, env={"FACE_CHALLENGE_DEMO_ORDER": "nod,left,right"}, dotenv=none)
    assert chosen.face_challenge_demo_order == "nod,left,right"
    off = load_settings(True, env={"SUNSHINE_DEMO": "0"}, dotenv=none)  # `.env` turned the demo off: no order
    assert not off.sunshine_demo and off.face_challenge_demo_order == ""
    assert load_settings(False, env={}, dotenv=none).face_challenge_demo_order == ""


def test_roles_start_only_their_processes():
    s = Settings(worker_processes=2)
    node = services(s, parse_roles("web,worker,watcher,sweeper"))
    assert [svc.name for svc in node] == ["web", "worker.0", "worker.1", "duties"]
    assert node[-1].command[-3:] == ["duties", "watcher", "sweeper"]  # only the duties asked for
    assert frozenset().union(*(svc.roles for svc in services(s, frozenset(NODE_ROLES)))) == set(NODE_ROLES)
    (every_duty,) = [svc for svc in services(s) if svc.name == "duties"]  # one process for every duty
    assert every_duty.command[-len(DUTY_ROLES) - 2 :] == ["-m", "duties", *DUTY_ROLES]
    assert [svc.name for svc in services(s)] == [svc.name for svc in services(s, frozenset(ROLES))]


def test_a_rasa_node_runs_rasa_and_the_action_server_on_their_urls_ports_wherever_they_point():
    s = Settings(rasa_url="http://10.0.0.21:5105", action_server_url="http://10.0.0.21:5155", bind_host="10.0.0.21")
    assert [svc.name for svc in services(s)][:2] == ["web", "worker.0"]  # not this machine's without --roles
    rasa, actions = services(s, parse_roles("rasa,actions"))
    assert rasa.port == 5105 and rasa.command[rasa.command.index("--interface") + 1] == "10.0.0.21"
    assert actions.command[-2:] == ["--port", "5155"] and child_env(s)["SANIC_HOST"] == "10.0.0.21"
    web = services(s, parse_roles("web"))[0]
    assert web.command[web.command.index("--bind") + 1] == "10.0.0.21:8000"


def test_an_unknown_or_empty_role_and_a_role_with_nothing_to_start_are_refused():
    with pytest.raises(StartupError, match="unknown role sweepers; the roles: web, worker"):
        parse_roles("web,sweepers")
    with pytest.raises(StartupError, match="none given"):
        parse_roles(" , ")
    remote = Settings(
        wechat_api_base="https://api.weixin.qq.com",
        bureau_url="https://bureau.example",
        core_banking_url="https://core.bank.example",
        wecom_api_base="https://qyapi.weixin.qq.com",
        sms_api_base="https://sms.example",
    )
    with pytest.raises(StartupError, match="--roles emulators: nothing to start"):
        services(remote, parse_roles("emulators"))
