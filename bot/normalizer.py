"""Text as customers type it, made what the model was trained on: the first step of the NLU
pipeline (bot/config.yml), so that `rasa train` and `rasa run` see the same text.

- Traditional characters -> Simplified: OpenCC's t2s conversion (the library
  opencc-python-reimplemented, its own dictionaries).
- Full-width digits and Latin letters -> ASCII (５万 -> 5万): Unicode's fixed offset.
- Homophone and look-alike typos (代款, 利习, 还歀, ...) and variant characters: the project's own
  data, bot/typos.yml.

Every replacement keeps the text's length, so the positions of entities annotated in the training
data and found in a message stay right. The customer's own words are kept as they wrote them
(the conversation's events and the officer console); the actions read the normalised text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from opencc import OpenCC
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

TYPOS_FILE = Path(__file__).with_name("typos.yml")
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF5B) if chr(c - 0xFEE0).isalnum()}


class TypoFileError(ValueError):
    """typos.yml cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Typos:
    characters: dict[int, str]
    words: dict[str, str]
    pattern: re.Pattern[str] | None


def read_typos(path: Path = TYPOS_FILE) -> Typos:
    """The typo table, checked: every correction as long as its typo, and no typo empty."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - {"characters", "words"}
    if unknown:
        raise TypoFileError(f"{path.name}: unknown section {', '.join(sorted(unknown))} (characters, words)")
    characters, words = data.get("characters") or {}, data.get("words") or {}
    for section, table in (("characters", characters), ("words", words)):
        for typo, meant in table.items():
            if not isinstance(typo, str) or not isinstance(meant, str) or not typo or typo == meant:
                raise TypoFileError(f"{path.name}, {section}: {typo!r} -> {meant!r} must be two different texts")
            if len(typo) != len(meant) or (section == "characters" and len(typo) != 1):
                raise TypoFileError(
                    f"{path.name}, {section}: {typo} -> {meant} must be the same length"
                    + (" (one character each)" if section == "characters" else "")
                )
    # Longest first, so that 代个款 wins over a shorter typo inside it.
    pattern = re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True)))) if words else None
    return Typos({ord(k): v for k, v in characters.items()}, words, pattern)


@cache
def _converter() -> OpenCC:
    return OpenCC("t2s")


@cache
def _typos() -> Typos:
    return read_typos()


def to_simplified(text: str) -> str:
    """OpenCC t2s; a phrase conversion that would change the length is done character by character."""
    converted = _converter().convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_converter().convert(c) if len(_converter().convert(c)) == 1 else c for c in text)


def normalize(text: str, typos: Typos | None = None) -> str:
    """Traditional -> Simplified, full-width -> ASCII, then the typo table."""
    typos = typos or _typos()
    text = to_simplified(text).translate(_FULL_WIDTH).translate(typos.characters)
    if typos.pattern is not None:
        text = typos.pattern.sub(lambda m: typos.words[m.group(0)], text)
    return text


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextNormalizer(GraphComponent):
    """The pipeline step: rewrites each message's text with `normalize`, in training and serving."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TextNormalizer:
        return cls()

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Rasa's training cache must not reuse results made with another typo table."""
        return hashlib.sha256(TYPOS_FILE.read_bytes()).hexdigest()

    @staticmethod
    def _rewrite(message: Message) -> None:
        text = message.get(TEXT)
        if text:
            message.set(TEXT, normalize(text))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            self._rewrite(message)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._rewrite(message)
        return messages
