"""bot.nlu.junk: messages without words become nlu_fallback; everything with words is left to DIET."""

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.junk import NoWordsFallback, has_no_words


@pytest.mark.parametrize("text", ["A" * 2000, "aaaaaa", "AaAaAaAa", "12121212", "!?!?!?!?", "？？？？", "。。。。。",
                                  "......", "  ? ? ? ?  ", "xxxxxx\nxxxxxx"])
def test_messages_without_words(text):
    assert has_no_words(text)


@pytest.mark.parametrize("text", ["我要退货", "哈哈哈哈哈哈", "好好好好好好", "202611200000000104", "SF1234567890123",
                                  "ok", "?", "👍", "👍👍👍👍👍👍", "??", "A" * 5, "退货？？？？", "abcabc",
                                  "13800001111", "不想要了！！！！"])
def test_messages_with_words_or_too_short_to_tell(text):
    assert not has_no_words(text)


def test_the_component_overrides_the_intent_only_of_messages_without_words():
    junk = Message.build(text="A" * 2000, intent="report_scam")
    words = Message.build(text="我要退货", intent="request_return")
    junk.set("intent", {"name": "report_scam", "confidence": 0.93})
    junk.set("intent_ranking", [{"name": "report_scam", "confidence": 0.93}])
    words.set("intent", {"name": "request_return", "confidence": 0.97})
    NoWordsFallback().process([junk, words])
    assert junk.get("intent") == {"name": "nlu_fallback", "confidence": 1.0}
    assert junk.get("intent_ranking") == [{"name": "nlu_fallback", "confidence": 1.0}]
    assert words.get("intent") == {"name": "request_return", "confidence": 0.97}
