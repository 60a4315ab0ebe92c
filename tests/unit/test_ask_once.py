"""A reply job run again after its worker died mid-way asks the bot once: the answer the bot
gave the first run is read back from the conversation's tracker (the message went with its key)."""

from __future__ import annotations

from dataclasses import replace

from flask import Flask, jsonify, request

from conversation import tasks
from conversation.relay import _keys, asked_key
from emulators import serve_in_thread
from sunshine.redis import connect

OPENID = "o_demo_zhangjianguo"


def rasa_tracker_app(events: list[dict], asked: list[dict]) -> Flask:
    """Rasa's two endpoints the job uses, over `events` (the tracker) and recording each asking."""
    app = Flask(__name__)

    @app.post("/webhooks/rest/webhook")
    def webhook():
        body = request.get_json()
        asked.append(body)
        events.append({"event": "user", "text": body["message"], "metadata": body["metadata"]})
        events.append({"event": "bot", "text": f"答：{body['message']}", "data": {}})
        return jsonify([{"recipient_id": body["sender"], "text": f"答：{body['message']}"}])

    @app.get("/conversations/<sender>/tracker")
    def tracker(sender):
        return jsonify({"sender_id": sender, "events": events})

    return app


def test_the_bot_is_asked_once_when_the_job_runs_again_before_keeping_its_answer(settings):
    events: list[dict] = [{"event": "action", "name": "action_listen"}]
    asked: list[dict] = []
    with serve_in_thread(rasa_tracker_app(events, asked)) as rasa:
        s = replace(settings, rasa_url=rasa)
        r = connect(s.redis_url)
        tasks.answer_message(OPENID, "利息咋算", "m-1", settings=s)
        assert [a["metadata"] for a in asked] == [{"message_key": "m-1"}] and r.exists(asked_key("m-1"))
        # the first run died after the bot answered, before the answer was kept
        r.delete(_keys("m-1")["answer"], _keys("m-1")["result"], _keys("m-1")["decided"])
        events.append({"event": "user", "text": "谢谢", "metadata": {"message_key": "m-2"}})  # a later message
        tasks.answer_message(OPENID, "利息咋算", "m-1", settings=s)
        assert len(asked) == 1
        assert r.get(_keys("m-1")["answer"]) == '["答：利息咋算"]'.encode()
        # the first run died before the bot got the message: asked now
        r.set(asked_key("m-3"), 1)
        tasks.answer_message(OPENID, "有哪些贷款产品", "m-3", settings=s)
        assert [a["message"] for a in asked] == ["利息咋算", "有哪些贷款产品"]
