"""A new text's parse starts when its message arrives (bot/nlu/rasa_speedups, `_install_parse_prefetch`): the turn
gets the graph's own result, the graph runs once per new text, and a parse that failed early is run again the
usual way."""

import asyncio
import threading
from pathlib import Path

import pytest
from rasa.core.agent import load_agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.nlu import rasa_speedups

rasa_speedups.install()
MODEL = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
ORIGINAL_PARSE = rasa_speedups.ORIGINALS["MessageProcessor._parse_message_with_graph"]
# Texts whose rules only answer (no custom action), some of them twice: the second time comes from the cache.
TEXTS = ["你好", "谢谢", "您好，在吗", "谢谢你", "再见", "你好", "好的，谢谢", "谢谢", "拜拜啦亲"]
PARSE_KEYS = ("intent", "entities", "intent_ranking", "text")


@pytest.fixture
def agent(monkeypatch):
    """A freshly loaded agent (its parse cache empty), counting the NLU graph's runs by thread."""
    loaded = asyncio.run(load_agent(str(MODEL)))
    runs: list = []
    real_run = type(loaded.processor.graph_runner).run

    def counting(self, inputs=None, targets=None):
        if targets == [loaded.processor.model_metadata.nlu_target]:
            runs.append(threading.current_thread().name)
        return real_run(self, inputs, targets)

    monkeypatch.setattr(type(loaded.processor.graph_runner), "run", counting)
    loaded.graph_runs = runs
    return loaded


async def say(agent, texts: list, prefix: str) -> list:
    """Each text in a conversation of its own; the parse data each turn stored."""
    stored = []
    for n, text in enumerate(texts):
        sender = f"{prefix}-{n}"
        out = CollectingOutputChannel()
        await agent.handle_message(UserMessage(text, out, sender))
        assert out.messages, text  # answered
        tracker = await agent.tracker_store.retrieve(sender)
        stored.append(tracker.latest_message.parse_data)
    return stored


def rasas_parse(agent, text: str) -> dict:
    return ORIGINAL_PARSE(agent.processor, UserMessage(text), None, True)


def test_each_turn_gets_the_graphs_own_parse_and_new_texts_parse_in_the_parse_thread(agent):
    before = dict(rasa_speedups.PARSE_PREFETCH_STATS)
    stored = asyncio.run(say(agent, TEXTS, "early"))
    for text, parse_data in zip(TEXTS, stored):
        theirs = rasas_parse(agent, text)
        assert {k: parse_data[k] for k in PARSE_KEYS} == {k: theirs[k] for k in PARSE_KEYS}, text
    new = len(set(TEXTS))
    # Every new text ran in the parse thread, once (repeats came from the cache); nothing ran in the turn.
    assert len(agent.graph_runs) >= new and all(n.startswith("parse") for n in agent.graph_runs[:new])
    assert len([n for n in agent.graph_runs if n.startswith("parse")]) == new
    after = rasa_speedups.PARSE_PREFETCH_STATS
    assert after["started"] - before.get("started", 0) == new
    assert after["used"] - before.get("used", 0) == new


def test_without_prefetch_the_same_turns_parse_in_the_event_loop(agent, monkeypatch):
    monkeypatch.setattr(rasa_speedups, "PARSE_PREFETCH", False)
    stored = asyncio.run(say(agent, TEXTS, "late"))
    assert not any(n.startswith("parse") for n in agent.graph_runs)
    assert len(agent.graph_runs) == len(set(TEXTS))
    for text, parse_data in zip(TEXTS, stored):
        assert parse_data["intent"] == rasas_parse(agent, text)["intent"], text


def test_a_parse_that_failed_early_is_run_again_in_the_turn(agent, monkeypatch):
    real = rasa_speedups._GRAPH_PARSE

    def fails_in_the_parse_thread(*args):
        if threading.current_thread().name.startswith("parse"):
            raise RuntimeError("the parse thread failed")
        return real(*args)

    monkeypatch.setattr(rasa_speedups, "_GRAPH_PARSE", fails_in_the_parse_thread)
    failed = rasa_speedups.PARSE_PREFETCH_STATS["failed"]
    stored = asyncio.run(say(agent, ["你好", "谢谢你"], "failing"))
    in_the_turn = sum(not n.startswith("parse") for n in agent.graph_runs)
    assert in_the_turn == 2  # each parsed again in its turn
    assert rasa_speedups.PARSE_PREFETCH_STATS["failed"] - failed == 2
    assert [p["intent"]["name"] for p in stored] == [rasas_parse(agent, t)["intent"]["name"] for t in ("你好", "谢谢你")]


def test_which_texts_start_early(agent, monkeypatch):
    processor = agent.processor
    asyncio.run(say(agent, ["你好"], "cache"))  # now in the parse cache

    def early(text: str) -> bool:
        return rasa_speedups.worth_parsing_early(processor, UserMessage(text))

    assert early("衣服穿了一次就开线了，我要退货") and early("我的订单号是202611200000000104") and early("衣服" * 40)
    assert not early("你好")  # cached
    assert not any(early(t) for t in ("", "   ", "/deny", '  /inform{"picks":"all"}'))
    assert not rasa_speedups.worth_parsing_early(None, UserMessage("衣服开线了"))
    monkeypatch.setattr(rasa_speedups, "PARSE_CACHE_SIZE", 0)  # no cache: a text seen before runs the graph again
    assert early("你好")
    monkeypatch.setattr(rasa_speedups, "PARSE_PREFETCH", False)
    assert not early("衣服穿了一次就开线了，我要退货")


def test_an_early_parse_is_used_only_by_the_model_that_started_it(agent):
    other = asyncio.run(load_agent(str(MODEL))).processor

    async def turn():
        message = UserMessage("您好，请问在吗", CollectingOutputChannel(), "swapped")
        future = asyncio.get_running_loop().create_future()
        future.set_result({"text": "您好，请问在吗", "intent": {"name": "deny", "confidence": 1.0}, "entities": []})
        message._bot_early_parse = (other, future)  # as if the model had been replaced meanwhile
        return await agent.processor.parse_message(message)

    assert asyncio.run(turn())["intent"]["name"] == rasas_parse(agent, "您好，请问在吗")["intent"]["name"] != "deny"
