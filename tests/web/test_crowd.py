"""The crowd of simulated WeChat users counts what it should: passive and
customer-service answers, and the MsgIds of lost and duplicated ones."""

import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest

from conversation.relay import split_for_wechat, worker_claims_passive
from emulators import serve_in_thread
from emulators.wechat.crowd import Crowd
from tests.workers import EmulatorBot
from webhooks import create_app

BUDGET_S = 0.5
SLOW = "利息咋算"  # answered after the budget: through the customer-service API


class ScriptedBot(EmulatorBot):
    """Answers SLOW texts after the budget and the rest at once; `drop` texts get no
    answer, `twice` texts get their API answer twice."""

    def __init__(self, settings, drop=(), twice=()):
        super().__init__(settings, 0)
        self.drop, self.twice = set(drop), set(twice)
        self.lock = threading.Lock()

    def answer(self, openid, text, key):
        with self.lock:
            self.asked.append(text)
        if text in self.drop:
            return
        delay = 1.0 if text in SLOW or text in self.twice else 0.02

        def run():
            time.sleep(delay)
            if not worker_claims_passive(self.r, key, [f"答：{text}"]):
                for _ in range(2 if text in self.twice else 1):
                    self.deliver(openid, split_for_wechat([f"答：{text}"]))

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)


@contextmanager
def crowd_against(emulated, monkeypatch, visits, kept=None, **bot_options):
    """A crowd of len(visits) users; user i says visits[i] in each visit."""
    settings, base, _ = emulated
    bot = ScriptedBot(settings, **bot_options)
    app_settings = replace(settings, wechat_reply_budget_s=BUDGET_S)
    with serve_in_thread(create_app(app_settings, bot)) as url:
        yield Crowd(
            f"{url}/wechat",
            base,
            app_settings.wechat_token,
            app_settings.wechat_appid,
            app_settings.wechat_aes_key,
            users=len(visits),
            conversation=lambda user, visit: visits[user],
            kept=kept,
        )
    bot.join()


def test_every_message_answered_once_passive_or_through_the_api(emulated, monkeypatch):
    with crowd_against(emulated, monkeypatch, [["你好", SLOW, "谢谢"]] * 3) as crowd:
        result = crowd.run(messages_per_user=6, settle_s=10)
    # Each user's visit has three texts; then the next customer (a new openid) takes over.
    assert result.sent == 18 and len({m.openid for m in result.messages}) == 6
    assert (result.passive, result.asynchronous, result.failed) == (12, 6, 0)
    assert (result.lost, result.duplicated, result.answered) == (0, 0, 18)
    assert all(len(m.answered_by) == 1 for m in result.messages if m.text == SLOW)
    assert {m.text: m.answer for m in result.messages} == {t: f"答：{t}" for t in ("你好", SLOW, "谢谢")}
    slow = [m.answer_ms for m in result.messages if m.text == SLOW]
    assert len(result.answer_times_ms) == 18 and all(ms > 990 for ms in slow), slow  # the bot takes 1 s
    assert len(result.latencies_ms) == 18 and result.msgs_per_s > 0


def test_lost_and_duplicated_answers_are_named_by_msgid(emulated, monkeypatch):
    visits = [["你好", SLOW, "不回答"], ["你好", SLOW, "回两遍"], ["谢谢"]]
    with crowd_against(emulated, monkeypatch, visits, drop=["不回答"], twice=["回两遍"]) as crowd:
        crowd.start(messages_per_user=3)
        assert crowd.wait(timeout=30)
        assert crowd.counts() == {"sent": 9, "passive": 5, "asynchronous": 4, "failed": 0, "retried": 0, "in_flight": 0}
        result = crowd.stop(settle_s=3)
    by_text = {m.text: m.msg_id for m in result.messages}
    assert result.lost_ids == [by_text["不回答"]]
    assert result.duplicated_ids == [by_text["回两遍"]] and result.extra_answers == ["答：回两遍"]
    assert (result.sent, result.answered, result.lost, result.duplicated) == (9, 8, 1, 1)


def test_settling_does_not_wait_for_a_message_kept_for_an_officer_which_is_still_reported(emulated, monkeypatch):
    asked = []

    def kept(msg_ids):  # as the bank would say: that message is held in an open hand-off
        asked.append(sorted(msg_ids))
        return {m.msg_id for m in crowd._messages if m.text == "不回答"}

    with crowd_against(emulated, monkeypatch, [["你好", SLOW, "不回答"]], kept=kept, drop=["不回答"]) as crowd:
        # settling would last past pytest's timeout (pytest.ini) if it waited for the kept message
        result = crowd.run(messages_per_user=3, settle_s=3600)
    dropped = next(m.msg_id for m in result.messages if m.text == "不回答")
    assert asked and all(dropped in ids for ids in asked)
    assert result.lost_ids == [dropped] and result.answered == 2


def test_run_needs_an_end():
    with pytest.raises(ValueError):
        Crowd("http://127.0.0.1:9/wechat", "http://127.0.0.1:9", "t", "a").run()
