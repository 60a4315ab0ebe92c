"""A message that is only a number (four digits or more) is a value given, `inform`: the code
texted for a WeChat binding, an amount, a phone number.

The classifier sees a digit run as little more than its characters and read every such message as
goodbye (88 and 886 are goodbyes in chat slang): a customer who sent the binding code got a
farewell instead of being bound. This step runs after the classifier and decides such messages
only; everything else keeps the classifier's intent.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

NUMBER_ONLY = re.compile(r"\s*\d{4,}\s*")


def is_number_only(text: str) -> bool:
    """123456, 50000, 13912340005 (after the normaliser made full-width digits ASCII); not 88."""
    return NUMBER_ONLY.fullmatch(text) is not None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class NumberIsInform(GraphComponent):
    """The pipeline step after the intent classifier (bot/config.yml)."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NumberIsInform:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if is_number_only(message.get(TEXT) or ""):
                intent = {INTENT_NAME_KEY: "inform", PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, intent, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages
