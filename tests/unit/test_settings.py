import os
import re
import subprocess
import sys

import pytest

from sunshine.settings import ROOT, ConfigError, load

GOOD_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_defaults_load_without_environment(tmp_path):
    s = load(env={}, dotenv=tmp_path / "none")
    assert s.web_port == 8000 and s.wechat_mode == "plaintext" and s.wechat_max_clock_skew == 300


def test_dotenv_is_read_and_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("WEB_PORT=9000\nWECHAT_APPID='wxfromdotenv'\n# comment\n")
    s = load(env={"WEB_PORT": "9100"}, dotenv=tmp_path / ".env")
    assert s.web_port == 9100 and s.wechat_appid == "wxfromdotenv"


def test_safe_mode_with_a_valid_key(tmp_path):
    assert load(env={"WECHAT_AES_KEY": GOOD_KEY}, dotenv=tmp_path / "x").wechat_mode == "safe"


@pytest.mark.parametrize(
    "env, words",
    [
        ({"WECHAT_AES_KEY": "tooshort"}, "43-character"),
        ({"WECHAT_AES_KEY": "!" * 43}, "base64"),
        ({"WEB_PORT": "eighty"}, "WEB_PORT"),
        ({"WECHAT_TOKEN": "has space"}, "WECHAT_TOKEN"),
        ({"WXA_PUSH_AES_KEY": "tooshort"}, "WXA_PUSH_AES_KEY must be the 43-character"),
        ({"WXA_PUSH_TOKEN": "has space"}, "WXA_PUSH_TOKEN"),
        ({"WECHAT_MAX_CLOCK_SKEW": "-1"}, "WECHAT_MAX_CLOCK_SKEW"),
        ({"DATABASE_URL": "var/db.sqlite"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"RASA_URL": "localhost:5005"}, "RASA_URL"),
        ({"REFERENCE_IMPORT_MAX_BYTES": "1000"}, "REFERENCE_IMPORT_MAX_BYTES"),
        ({"REPAYMENT_REMINDER_DAYS": "-1"}, "REPAYMENT_REMINDER_DAYS must be between 0"),
        ({"REPAYMENT_REMINDER_HOUR": "24"}, "REPAYMENT_REMINDER_HOUR must be an hour"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path, env, words):
    with pytest.raises(ConfigError) as exc:
        load(env=env, dotenv=tmp_path / "x")
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_public_view_hides_secrets(tmp_path):
    s = load(env={"WECHAT_SECRET": "s3cret", "DATABASE_URL": "postgresql://bank:pw@db/x"}, dotenv=tmp_path / "x")
    shown = s.public()
    assert shown["wechat_secret"] == "***" and "pw" not in shown["database_url"]


def test_production_refuses_every_development_secret(tmp_path):
    env = {"SUNSHINE_ENV": "production", "SECRET_KEY": "a-long-random-value-of-at-least-32-chars"}
    with pytest.raises(ConfigError) as exc:
        load(env, dotenv=tmp_path / "none")
    left = [p.split()[0] for p in exc.value.problems if "still the development default" in p]
    assert left == [
        "WECHAT_TOKEN",
        "WECHAT_SECRET",
        "WXA_SECRET",
        "WXA_PUSH_TOKEN",
        "WECOM_SECRET",
        "SMS_API_KEY",
        "CORE_BANKING_SECRET",
    ]
    env.update(
        WECHAT_TOKEN="realtoken1",
        WECHAT_SECRET="s1",
        WXA_SECRET="s2",
        WECOM_SECRET="s3",
        SMS_API_KEY="k",
        CORE_BANKING_SECRET="c1",
        WXA_PUSH_TOKEN="realpushtoken1",
    )
    with pytest.raises(ConfigError) as exc:
        load(env, dotenv=tmp_path / "none")
    assert not [p for p in exc.value.problems if "still the development default" in p]
    assert [p for p in exc.value.problems if "evidence" in p] == [
        "EVIDENCE_KEY_ID names the development evidence key; add a real key to EVIDENCE_KEYS"
    ]
    # the development key kept beside a real one (to verify old records) is fine; sealing with it is not
    env.update(EVIDENCE_KEYS="dev:dev-only-evidence-key-change-me,bank2026:0123456789abcdef0123")
    with pytest.raises(ConfigError, match="development evidence key"):
        load(env, dotenv=tmp_path / "none")
    env.update(EVIDENCE_KEY_ID="bank2026")
    with pytest.raises(ConfigError) as exc:  # the guard's other refusals remain
        load(env, dotenv=tmp_path / "none")
    assert not [p for p in exc.value.problems if "evidence" in p]


@pytest.mark.parametrize(
    ("keys", "key_id", "complaint"),
    [
        ("k1:0123456789abcdef", "k2", "EVIDENCE_KEY_ID='k2' names no key"),
        ("k1:short", "k1", "at least 16 characters"),
        ("k1:0123456789abcdef,k1:0123456789abcdef", "k1", "unique"),
        ("legacy-sha256:0123456789abcdef", "legacy-sha256", "not legacy-sha256"),
        ("no-colon-here", "k1", "key_id:secret pairs"),
    ],
)
def test_malformed_evidence_keys_are_refused(tmp_path, keys, key_id, complaint):
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        load({"EVIDENCE_KEYS": keys, "EVIDENCE_KEY_ID": key_id}, dotenv=tmp_path / "none")


def test_evidence_keys_are_hidden_and_rotation_keeps_old_ones(tmp_path):
    s = load({"EVIDENCE_KEYS": "k1:0123456789abcdef, k2:fedcba9876543210", "EVIDENCE_KEY_ID": "k2"}, tmp_path / "n")
    assert s.evidence_keyring() == {"k1": b"0123456789abcdef", "k2": b"fedcba9876543210"}
    assert s.public()["evidence_keys"] == "***"


@pytest.mark.parametrize(
    "order, words",
    [
        ("left,right,blink", "unknown action 'blink' (use left, right, nod, mouth)"),
        ("left,left,nod", "an action is repeated"),
        ("left,right", "a challenge has 3 actions, got 2"),
        ("left,right,nod,mouth", "a challenge has 3 actions, got 4"),
    ],
)
def test_the_demo_challenge_order_is_checked(tmp_path, order, words):
    with pytest.raises(ConfigError) as exc:
        load(env={"SUNSHINE_DEMO": "1", "FACE_CHALLENGE_DEMO_ORDER": order}, dotenv=tmp_path / "x")
    assert exc.value.problems == [f"FACE_CHALLENGE_DEMO_ORDER={order!r}: {words}; e.g. left,right,mouth"]


def test_the_demo_challenge_order_needs_the_demo_switch_and_is_refused_in_production(tmp_path):
    s = load(env={"SUNSHINE_DEMO": "1", "FACE_CHALLENGE_DEMO_ORDER": " nod, mouth ,left"}, dotenv=tmp_path / "x")
    assert s.face_challenge_demo_order == "nod, mouth ,left"
    with pytest.raises(ConfigError) as exc:  # without the demo switch: one clear line
        load(env={"FACE_CHALLENGE_DEMO_ORDER": "left,right,nod"}, dotenv=tmp_path / "x")
    assert len(exc.value.problems) == 1 and "SUNSHINE_DEMO is off" in exc.value.problems[0]
    with pytest.raises(ConfigError) as exc:
        load(
            {"SUNSHINE_ENV": "production", "SUNSHINE_DEMO": "1", "FACE_CHALLENGE_DEMO_ORDER": "left,right,nod"},
            dotenv=tmp_path / "x",
        )
    assert [p for p in exc.value.problems if p.startswith("FACE_CHALLENGE_DEMO_ORDER fixes the face challenge")]
    # `make run`'s default, overridden by an empty value: the random challenge again
    defaults = {"SUNSHINE_DEMO": "1", "FACE_CHALLENGE_DEMO_ORDER": "left,right,mouth"}
    assert load({"FACE_CHALLENGE_DEMO_ORDER": ""}, tmp_path / "x", defaults).face_challenge_demo_order == ""


@pytest.mark.parametrize(
    "command",
    [
        ["duties"],
        ["handoff", "watch"],
        ["lending", "escalate-overdue"],
        ["conversation", "menu", "publish"],
        ["emulators.bureau"],
        ["emulators.wechat.chat"],
    ],
)
def test_a_command_with_a_bad_setting_says_which_and_exits_with_2(command):
    done = subprocess.run(
        [sys.executable, "-m", *command],
        env=dict(os.environ, REPAYMENT_REMINDER_HOUR="24", PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("configuration error: REPAYMENT_REMINDER_HOUR must be an hour"), done.stderr
