"""bot.numbers: a message that is only a number is `inform`, whatever the classifier guessed."""

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.numbers import NumberIsInform, is_number_only


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["123456", " 839201 ", "50000", "13912340005"])
def test_a_code_an_amount_or_a_phone_alone_is_inform(text):
    message = Message(data={TEXT: text, INTENT: {"name": "goodbye", "confidence": 0.92}})
    (out,) = NumberIsInform().process([message])
    assert out.get(INTENT) == {"name": "inform", "confidence": 1.0}
    assert out.get(INTENT_RANKING_KEY) == [{"name": "inform", "confidence": 1.0}]


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["88", "886", "1", "借50000", "123456吗", "5万", ""])
def test_anything_else_keeps_the_classifier_s_intent(text):
    guessed = {"name": "goodbye", "confidence": 0.92}
    message = Message(data={TEXT: text, INTENT: guessed})
    (out,) = NumberIsInform().process([message])
    assert out.get(INTENT) == guessed and not is_number_only(text)
