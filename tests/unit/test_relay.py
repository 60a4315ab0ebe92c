"""The exactly-once protocol between the web request and the worker, on a real Redis."""

import threading
import time

from conversation.relay import Relay, split_for_wechat
from sunshine.redis import connect
from tests.workers import ThreadWorker


def test_fast_bot_answers_passively_once(redis_url):
    r = connect(redis_url)
    worker = ThreadWorker(r, 0.05)
    relay = Relay(r, worker, budget_s=2)
    first = relay.handle("o1", "你好", "m1")
    retry = relay.handle("o1", "你好", "m1")
    worker.join()
    assert first.passive_text == "您好" and not first.duplicate
    assert retry.duplicate and retry.passive_text == "您好"
    assert worker.asked == ["你好"] and worker.sent == []


def test_slow_bot_answers_through_the_api_after_success(redis_url):
    r = connect(redis_url)
    worker = ThreadWorker(r, 1.5)
    started = time.monotonic()
    outcome = Relay(r, worker, budget_s=0.5).handle("o1", "你好", "m2")
    assert outcome.passive_text is None and time.monotonic() - started < 1.4
    worker.join()
    assert worker.sent == [["您好"]]


def test_concurrent_retries_reach_the_bot_once(redis_url):
    r = connect(redis_url)
    worker = ThreadWorker(r, 0.2)
    relay = Relay(r, worker, budget_s=2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(relay.handle("o1", "在吗", "m3"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.join()
    assert worker.asked == ["在吗"]
    assert sum(1 for o in results if o.passive_text == "您好" and not o.duplicate) == 1
    assert worker.sent == []


def test_long_answers_are_split_in_order_and_rest_delivered(redis_url):
    r = connect(redis_url)
    long_texts = ["甲" * 600, "乙" * 600]  # 1800 bytes each
    worker = ThreadWorker(r, 0.05, long_texts)
    outcome = Relay(r, worker, budget_s=2).handle("o1", "说说", "m4")
    worker.join()
    # Both parts go through the API, in order: a passive first part could overtake nothing then.
    assert outcome.passive_text is None and worker.sent == [["甲" * 600, "乙" * 600]]


def test_split_for_wechat():
    assert split_for_wechat(["a", "b"]) == ["a\n\nb"]
    parts = split_for_wechat(["字" * 1000])
    assert [len(p.encode()) for p in parts] == [2046, 954]
    assert "".join(parts) == "字" * 1000


def test_retry_gets_the_answer_the_first_delivery_gave_too_late(redis_url):
    """The first HTTP response came after WeChat stopped waiting for it (the request
    queued in the server): WeChat's retry must carry the answer itself."""
    r = connect(redis_url)
    worker = ThreadWorker(r, 1.0)
    first_relay, retry_relay = Relay(r, worker, budget_s=4), Relay(r, worker, budget_s=2)
    first = []
    t = threading.Thread(target=lambda: first.append(first_relay.handle("o1", "额度", "m5")))
    t.start()
    time.sleep(0.3)
    retry = retry_relay.handle("o1", "额度", "m5")
    t.join()
    worker.join()
    assert retry.duplicate and retry.passive_text == "您好" and first[0].passive_text == "您好"
    assert worker.asked == ["额度"] and worker.sent == []


def test_retry_after_an_api_delivery_gets_success_at_once(redis_url):
    r = connect(redis_url)
    worker = ThreadWorker(r, 1.0)
    assert Relay(r, worker, budget_s=0.5).handle("o1", "额度", "m6").passive_text is None
    started = time.monotonic()
    retry = Relay(r, worker, budget_s=2).handle("o1", "额度", "m6")
    assert retry.duplicate and retry.passive_text is None and time.monotonic() - started < 0.5
    worker.join()
    assert worker.sent == [["您好"]]


def test_a_retry_decides_for_a_first_request_that_died_so_a_late_answer_still_goes_out(redis_url):
    r = connect(redis_url)
    worker = ThreadWorker(r, 1.2)
    relay = Relay(r, worker, budget_s=0.3)
    # The first request enqueued the message, then its web worker was killed before deciding.
    r.set("wx:m5:seen", "1")
    worker.answer("o1", "你好", "m5")
    retry = relay.handle("o1", "你好", "m5")
    assert retry.duplicate and retry.passive_text is None
    assert r.get("wx:m5:decided") == b"async"
    worker.join()
    assert worker.sent == [["您好"]]  # through the API, not pushed to a request that no longer waits
