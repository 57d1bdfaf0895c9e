"""The strict tracker store reads stored events with ujson (bot/ops/rasa_guard.py `_loads`): the same
Python objects as json gives, for everything an event may hold."""

import json
import math
import random

from bot.ops.rasa_guard import _loads

# (hypothesis is in the application environment only: random values from a fixed seed here)
CHARS = "abc衣服开线😡\u0001\u007f\u2028\"\\/<>'é\ud7ff\ue000\ud800\udc00"  # lone surrogates too
SPECIAL_FLOATS = [0.0, -0.0, 1e308, 5e-324, 0.1, 1 / 3, float("nan"), float("inf"), -float("inf")]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([rng.randint(-2 ** 70, 2 ** 70), rng.randint(-1000, 1000), 2 ** 63, -2 ** 63 - 1])
    if kind == 2:
        return rng.choice(SPECIAL_FLOATS + [rng.uniform(-1e6, 1e6), rng.random() / 7, rng.expovariate(1e-9)])
    if kind in (3, 4):
        return "".join(rng.choice(CHARS) for _ in range(rng.randrange(12)))
    if kind == 5:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {"".join(rng.choice(CHARS) for _ in range(rng.randrange(6))): random_value(rng, depth + 1)
            for _ in range(rng.randrange(5))}


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_any_stored_json_reads_as_json_reads_it():
    rng = random.Random(11)
    for _ in range(3000):
        data = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5)
        assert same(_loads(data), json.loads(data)), data


def test_a_real_user_event_with_chinese_emoji_and_control_characters():
    rng = random.Random(3)
    event = {"event": "user", "timestamp": 1764180000.1234567, "text": "衣服开线了😡\u0001<b>'; DROP",
             "parse_data": {"intent": {"name": "reason_quality", "confidence": 0.98765432109876543},
                            "intent_ranking": [{"name": f"i{k}", "confidence": rng.random() / 3} for k in range(10)],
                            "entities": [{"entity": "order_no", "value": "202611200000000301", "start": 0}]},
             "metadata": {"buyer_token": "eyJidXllciI6M30.abc", "shop": "demo"}}
    for ascii_only in (True, False):
        data = json.dumps(event, ensure_ascii=ascii_only)
        assert same(_loads(data), json.loads(data))
