"""The replicas' parse cache, through real replicas: a repeated short text is answered from it and understood
the same way; a text with a digit never is; the health route shows counts and no text."""

import json
import random

import requests

from tests.prod.support import Buyer, _user_and_rewind_events, new_buyers


def counts(prod_stack) -> dict:  # type: ignore[no-untyped-def]
    total = {"hits": 0, "misses": 0, "skipped": 0}
    for port in prod_stack.cfg.ports.rasa_replicas:
        health = requests.get(f"http://127.0.0.1:{port}/webhooks/rest/", timeout=30).json()
        assert set(health) == {"status", "parse_cache"} and set(health["parse_cache"]) == set(total)
        for key in total:
            total[key] += health["parse_cache"][key]
    return total


def test_a_repeated_text_is_answered_from_the_cache_with_the_same_answer(prod_stack):
    buyer = Buyer(prod_stack, new_buyers(prod_stack)[0])
    # A text no test sends otherwise, so the first time is a miss: a thank-you with a random tail of 好/的/谢.
    text = "谢谢你" + "".join(random.choice("好的谢") for _ in range(12))
    before = counts(prod_stack)
    assert buyer.says(text)
    after_first = counts(prod_stack)
    assert buyer.says(text)  # the same conversation, so the same replica (nginx hashes the sender)
    after_second = counts(prod_stack)
    first, second = (json.loads(data)["parse_data"] for kind, data in _user_and_rewind_events(
        prod_stack, buyer.buyer_id) if kind == "user")
    assert first.pop("message_id") != second.pop("message_id")  # each message's own (Rasa adds it after the parse)
    assert first == second and first["text"] == text and first["intent"]["name"]
    assert (after_first["misses"] - before["misses"], after_first["hits"] - before["hits"]) == (1, 0)
    assert (after_second["misses"] - after_first["misses"], after_second["hits"] - after_first["hits"]) == (0, 1)

    with_digit = "谢谢你" + "".join(random.choice("好的谢") for _ in range(8)) + "7"
    buyer.says(with_digit)
    buyer.says(with_digit)
    after_digits = counts(prod_stack)
    assert after_digits["skipped"] - after_second["skipped"] == 2
    assert (after_digits["hits"], after_digits["misses"]) == (after_second["hits"], after_second["misses"])
