"""Action calls carry the turn's events only (bot/ops/rasa_guard.py, bot/ops/action_history.py): the rest of the
payload is Rasa's own, and the actions that read the history still get all of it."""

import json

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig

import bot.ops.rasa_guard  # noqa: F401  (installs the change, as `rasa run` does through credentials.yml)
from bot.ops.action_history import ACTIONS_READING_HISTORY

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, request_return, affirm]
slots:
  order_no:
    type: text
    mappings: [{type: custom}]
actions: [action_refund_status, action_notify_update, validate_after_sale_form]
""")


def conversation() -> DialogueStateTracker:
    tracker = DialogueStateTracker("buyer-3", DOMAIN.slots)
    for text, intent, after in [("你好", "greet", [ActionExecuted("utter_greet")]),
                                ("我要退货", "request_return", [SlotSet("order_no", "202611200000000301"),
                                                                ActionExecuted("action_refund_status")]),
                                ("确认", "affirm", [SlotSet("order_no", "202611200000000302")])]:
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered(text, {"name": intent, "confidence": 0.9},
                                   parse_data={"intent": {"name": intent, "confidence": 0.9}, "entities": [],
                                               "text": text}))
        for event in after:
            tracker.update(event)
    return tracker


def payload(name: str, tracker: DialogueStateTracker) -> dict:
    action = RemoteAction(name, EndpointConfig("http://127.0.0.1:9/webhook", enable_selective_domain=True))
    return json.loads(json.dumps(action._action_call_format(tracker, DOMAIN)))  # as sent over the wire


def rasas_state(tracker: DialogueStateTracker) -> dict:
    return json.loads(json.dumps(tracker.current_state(EventVerbosity.ALL)))


def test_an_action_gets_the_events_from_the_latest_user_message_on_and_the_whole_state():
    tracker = conversation()
    sent = payload("validate_after_sale_form", tracker)
    whole = rasas_state(tracker)
    last_user = max(i for i, e in enumerate(whole["events"]) if e["event"] == "user")
    assert sent["tracker"]["events"] == whole["events"][last_user:]
    assert [e["event"] for e in sent["tracker"]["events"]] == ["user", "slot"]
    assert {k: v for k, v in sent["tracker"].items() if k != "events"} == \
        {k: v for k, v in whole.items() if k != "events"}
    assert sent["tracker"]["slots"]["order_no"] == "202611200000000302"  # the state, not just the turn
    assert (sent["next_action"], sent["sender_id"]) == ("validate_after_sale_form", "buyer-3")
    assert len(json.dumps(sent)) < len(json.dumps(payload("action_notify_update", tracker)))


def test_the_actions_that_read_the_history_get_all_of_it():
    tracker = conversation()
    assert "action_notify_update" in ACTIONS_READING_HISTORY
    assert payload("action_notify_update", tracker)["tracker"] == rasas_state(tracker)


def test_a_conversation_without_a_user_message_sends_every_event():
    tracker = DialogueStateTracker("buyer-4", DOMAIN.slots)
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SlotSet("order_no", "1"))
    assert payload("action_refund_status", tracker)["tracker"] == rasas_state(tracker)
