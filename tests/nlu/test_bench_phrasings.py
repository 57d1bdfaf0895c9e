"""The load bench's buyers (bench/phrasings.py) are understood: every phrasing of every step, the 5,040 quality
complaints included, gets the intent the conversation needs. The first draft of the complaints found 30 that
the bot took for a plain return request or did not understand (刚到手就起球了，我要退货 …)."""

import asyncio
from collections import Counter
from pathlib import Path

from rasa.core.agent import load_agent

from bench.phrasings import STEPS
from bot.nlu import rasa_speedups

rasa_speedups.install()

INTENT_OF_STEP = {"greeting": "greet", "quality reason": "reason_quality", "photos later": "deny",
                  "确认": "affirm", "status": "ask_refund_progress", "thanks": "thank"}


def test_every_phrasing_of_the_bench_gets_the_intent_its_step_needs():
    agent = asyncio.run(load_agent(str(Path(__file__).resolve().parents[2] / "models" / "current.tar.gz")))
    assert [label for label, _, _ in STEPS] == list(INTENT_OF_STEP)
    wrong: Counter = Counter()
    for label, phrasings, _ in STEPS:
        for text in phrasings:
            intent = asyncio.run(agent.parse_message(text))["intent"]["name"]
            if intent != INTENT_OF_STEP[label]:
                wrong[(label, text, intent)] += 1
    assert sum(len(p) for _, p, _ in STEPS) == 5040 + 21
    assert not wrong, list(wrong)[:20]
