"""Messages without words are not read as any intent (config: `bot.nlu.junk.NoWordsFallback`, after DIET).

DIET's character n-grams always pick some intent, however little a message says: 2,000 × "A" was read as a
scam report (a warning and a hand-over to a person). A long run of one or two ASCII characters, or a message
of punctuation only, gets `nlu_fallback` instead, so the buyer is asked what they want. Chinese words,
emoji and short messages ("👍👍👍", "?", "哈哈哈哈哈哈") are left to DIET.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message

FALLBACK = "nlu_fallback"
_SPACE = re.compile(r"\s+")


def has_no_words(text: str) -> bool:
    """A long run of at most two ASCII characters ("AAAA…", "12121212", "!?!?!?"), or only punctuation
    ("？？？？", "。。。。。"), counted without spaces."""
    compact = _SPACE.sub("", text)
    if compact.isascii() and len(compact) >= 6 and len(set(compact.lower())) <= 2:
        return True
    return len(compact) >= 4 and all(unicodedata.category(c).startswith("P") for c in compact)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class NoWordsFallback(GraphComponent):
    """Sets the intent (and ranking) of a message without words to `nlu_fallback` (confidence 1)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> NoWordsFallback:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if has_no_words(message.get(TEXT) or ""):
                # The ranking goes too: the fallback would otherwise ask "did you mean <DIET's guess>?".
                fallback = {INTENT_NAME_KEY: FALLBACK, PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, fallback, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [fallback], add_to_output=True)
        return messages
