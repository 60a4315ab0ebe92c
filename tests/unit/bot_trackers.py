"""Trackers as the Rasa server sends them to the action server, for the action tests."""

from __future__ import annotations

from pathlib import Path

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

DEMO_OPENID = "o_demo_zhangjianguo"  # 张建国, farmer, 200000 yuan line until the end of next year
UNKNOWN_OPENID = "o_nobody_knows_this_user"
PUBLIC_BASE = "https://credit.example-bank.cn"
DOMAIN = yaml.safe_load((Path(__file__).resolve().parents[2] / "bot" / "domain.yml").read_text(encoding="utf-8"))


def user_event(text: str, intent: str, entities: list | None = None, confidence: float = 0.97) -> dict:
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence}],
        "entities": _placed(text, entities or []),
    }
    return {"event": "user", "timestamp": 1.0, "text": text, "parse_data": parse_data, "input_channel": "rest"}


def entity(name: str, value: str, text: str | None = None) -> dict:
    """An entity as DIET gives it; user_event places it where its text is in the message."""
    return {
        "entity": name,
        "value": value,
        "text": text or value,
        "extractor": "DIETClassifier",
        "confidence_entity": 0.99,
    }


def _placed(message: str, entities: list) -> list:
    """start/end as Rasa sets them: each entity's text found in the message, left to right."""
    placed, cursor = [], 0
    for e in entities:
        start = message.find(e["text"], cursor)
        start = start if start >= 0 else message.find(e["text"])
        if start < 0:
            raise ValueError(f"entity text {e['text']!r} is not in the message {message!r}")
        placed.append({**e, "start": start, "end": start + len(e["text"])})
        cursor = start + len(e["text"])
    return placed


def make_tracker(sender: str, *turns: dict, slots: dict | None = None, active_loop: str | None = None) -> Tracker:
    """A tracker as Rasa sends it: the user turns, each after action_listen."""
    events: list[dict] = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"}]
    for turn in turns:
        events.append({"event": "action", "name": "action_listen"})
        events.append(turn)
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update(slots or {})
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": all_slots,
            "latest_message": turns[-1]["parse_data"],
            "events": events,
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": active_loop} if active_loop else {},
            "latest_action_name": "action_listen",
        }
    )


def run(action, tracker: Tracker) -> tuple[str, list]:
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages, "the action must always answer"
    return "\n".join(_said(m) for m in dispatcher.messages), events


def _said(message: dict) -> str:
    """The text, or the domain's text of the response named (as Rasa renders it)."""
    if message.get("response"):
        return DOMAIN["responses"][message["response"]][0]["text"]
    return message.get("text") or ""
