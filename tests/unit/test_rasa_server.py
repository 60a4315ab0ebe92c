"""bot/server.py: Rasa's command line with the action server's answers checked
by a validator prepared once, and event classes looked up once."""

from __future__ import annotations

import jsonschema
import pytest
from jsonschema import validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered, deserialise_events
from rasa.utils.endpoints import EndpointConfig
from rasa.utils.tensorflow.models import RasaModel

from bot import server
from sunshine.launcher import services
from sunshine.settings import Settings

ANSWER = {
    "events": [
        {"event": "slot", "name": "requested_slot", "value": "amount", "timestamp": None},
        {"event": "active_loop", "name": "loan_application_form", "timestamp": None},
    ],
    "responses": [
        {
            "text": "请问您想借多少？",
            "buttons": [],
            "elements": [],
            "custom": {},
            "template": None,
            "response": None,
            "image": None,
            "attachment": None,
        }
    ],
}


@pytest.fixture
def installed(monkeypatch):
    """server.install() for one test: Rasa's own methods come back afterwards."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(Event, "resolve_by_type", staticmethod(Event.resolve_by_type))
    monkeypatch.setattr(RasaModel, "load", RasaModel.__dict__["load"])  # the classmethod itself
    server.install()
    server.response_validator.cache_clear()
    server._event_classes.clear()
    yield
    server.response_validator.cache_clear()
    server._event_classes.clear()


def remote_action() -> RemoteAction:
    return RemoteAction("action_ask_amount", EndpointConfig("http://127.0.0.1:1/webhook"))


def test_the_response_schema_is_checked_once_for_many_answers(installed, monkeypatch):
    checked = []
    schema_check = validators.Draft202012Validator.check_schema
    monkeypatch.setattr(
        validators.Draft202012Validator,
        "check_schema",
        classmethod(lambda cls, schema: (checked.append(1), schema_check(schema))),
    )
    action = remote_action()

    assert all(action._validate_action_result(ANSWER) for _ in range(5))
    assert len(checked) == 1


def test_an_invalid_answer_still_gets_rasas_error(installed):
    bad = {"events": [{"event": "slot", "name": 3}], "responses": "not a list"}

    with pytest.raises(jsonschema.ValidationError) as raised:
        remote_action()._validate_action_result(bad)
    assert "Failed to validate Action server response" in raised.value.message


def test_event_classes_are_found_once_and_unknown_types_behave_as_in_rasa(installed):
    dumped = [
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {
            "event": "user",
            "text": "我想贷5万",
            "timestamp": 2.0,
            "parse_data": {"intent": {"name": "apply_loan", "confidence": 0.9}, "entities": []},
        },
        {"event": "slot", "name": "amount", "value": "50000", "timestamp": 3.0},
    ] * 3

    events = deserialise_events(dumped)

    assert [type(e) for e in events] == [ActionExecuted, UserUttered, SlotSet] * 3
    assert events[1].text == "我想贷5万" and events[2].value == "50000"
    assert server._event_classes == {"action": ActionExecuted, "user": UserUttered, "slot": SlotSet}
    assert Event.resolve_by_type("no_such_event", SlotSet) is SlotSet
    assert "no_such_event" not in server._event_classes
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")


def test_the_launcher_starts_rasa_through_bot_server():
    rasa = next(s for s in services(Settings()) if s.name == "rasa")
    assert rasa.command[1:5] == ["-m", "bot.server", "run", "--enable-api"]
