"""Responses the form sends by itself (no custom action): the photo request says why when the buyer changed
the reason (domain.yml, utter_ask_evidence with a condition on the slot reason_changed)."""

import asyncio
from pathlib import Path

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))


def ask_evidence(**slots: object) -> dict:
    tracker = DialogueStateTracker("buyer-3", DOMAIN.slots)
    for name, value in slots.items():
        tracker.update(SlotSet(name, value))
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    return asyncio.run(nlg.generate("utter_ask_evidence", tracker, "rest"))


def test_the_photo_request_says_why_after_a_changed_reason():
    for _ in range(10):  # a variation is picked at random among those that apply
        said = ask_evidence(reason_changed=True)
        assert said["text"].startswith("您前后说的原因不一样") and said["buttons"][0]["payload"] == "/deny"


def test_the_plain_photo_request_otherwise():
    for slots in ({}, {"reason_changed": False}):
        for _ in range(10):
            said = ask_evidence(**slots)
            assert said["text"].startswith("为了尽快帮您处理") and said["buttons"][0]["title"] == "稍后补充"


def test_the_form_asks_for_evidence_and_the_account_without_custom_actions():
    assert "action_ask_evidence" not in DOMAIN.action_names_or_texts
    assert "action_ask_refund_account" not in DOMAIN.action_names_or_texts
    assert {"utter_ask_evidence", "utter_ask_refund_account"} <= set(DOMAIN.responses)
