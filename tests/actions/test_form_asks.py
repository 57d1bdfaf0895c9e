"""The form's questions about orders, items and the quote are asked by its validation, in the same action call.

The trackers here have the shape Rasa 3.6 gives the validation (rasa/core/actions/forms.py _temporary_tracker):
the conversation, then SlotSet(requested_slot), ActionExecuted(the form) and the slots just extracted.
"""

import asyncio
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.after_sale import ValidateAfterSaleForm, rasa_will_reject
from tests.actions.conftest import DOMAIN, responses, slot_events

FORM = "after_sale_form"
ORDER = "202611200000000301"  # buyer 3: one delivered 针织开衫
QUALITY = {"order_no": ORDER, "picks": "all", "reason": "quality", "buyer_words": "开线了"}


def listened(text: str) -> list[dict]:
    return [{"event": "action", "name": "action_listen"}, {"event": "user", "text": text}]


def form_tracker(buyer: int, slots: dict[str, Any], before: list[dict], extracted: dict[str, Any],
                 requested: str | None, text: str = "", intent: str = "inform") -> Tracker:
    """What Rasa sends: `before` is the conversation up to this run of the form."""
    events = [*before, {"event": "slot", "name": "requested_slot", "value": requested},
              {"event": "action", "name": FORM},
              *({"event": "slot", "name": k, "value": v} for k, v in extracted.items())]
    message = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": [], "metadata": {}}
    return Tracker(f"buyer-{buyer}", {**slots, **extracted, "requested_slot": requested}, message, events, False,
                   None, {"name": FORM}, FORM)


def validate(t: Tracker) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidateAfterSaleForm().run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def test_photos_later_is_answered_with_the_quote_and_the_question_in_one_call(services):
    t = form_tracker(3, QUALITY, listened("/deny"), {"evidence": "later"}, "evidence", "/deny", "deny")
    messages, events = validate(t)
    assert responses(messages) == ["utter_quote", "utter_confirm_application"]
    assert messages[0]["total"] == "¥199.00"
    slots = slot_events(events)
    assert slots["evidence"] == "later" and slots["requested_slot"] == "confirmed"
    assert slots["quoted_total_fen"] == 19900.0  # what the buyer is asked to confirm


def test_several_orders_are_offered_as_buttons_when_the_form_starts(services):
    before = [*listened("质量太差"), {"event": "action", "name": "action_start_after_sale"}]
    # At its start the form has Rasa validate the slots already filled (forms.py activate).
    t = form_tracker(1, {}, before, {"reason": "quality"}, None, "质量太差", "reason_quality")
    messages, events = validate(t)
    assert responses(messages) == ["utter_choose_order"]
    assert slot_events(events)["requested_slot"] == "order_no"
    assert all(b["payload"].startswith('/inform{"order_no":"') for b in messages[0]["buttons"])


def test_an_order_with_several_lines_asks_which_items(services):
    before = listened('/inform{"order_no":"202611200000000104"}')
    t = form_tracker(1, {"reason": "quality"}, before, {"order_no": "202611200000000104"}, "order_no")
    messages, events = validate(t)
    assert responses(messages) == ["utter_choose_items"]
    assert messages[0]["buttons"][-1]["title"] == "全部商品"
    assert slot_events(events)["requested_slot"] == "picks"


def test_an_answer_that_fills_nothing_is_left_to_rasa_to_reject(services):
    """Rasa drops this run and lets a rule answer ("who pays the freight?"): asking here would be thrown away."""
    t = form_tracker(3, {**QUALITY, "evidence": "later"}, listened("运费谁出"), {}, "confirmed", "运费谁出",
                     "ask_shipping_fee")
    assert rasa_will_reject(t, [{"event": "slot", "name": "requested_slot", "value": "confirmed"}])
    messages, events = validate(t)
    assert messages == [] and slot_events(events) == {"requested_slot": "confirmed"}


def test_whether_rasa_rejects_depends_on_the_turn_only():
    """The same turn after a whole earlier conversation (an action that reads the history is sent all of it)."""
    earlier = [*listened("你好"), {"event": "action", "name": "utter_greet"}, {"event": "bot", "text": "您好"},
               *listened("质量太差"), {"event": "action", "name": "action_start_after_sale"},
               {"event": "action", "name": FORM}]
    requested = [{"event": "slot", "name": "requested_slot", "value": "confirmed"}]
    answered = form_tracker(3, QUALITY, [*earlier, *listened("运费谁出")], {}, "confirmed")
    assert rasa_will_reject(answered, requested)
    assert not rasa_will_reject(answered, [{"event": "slot", "name": "confirmed", "value": True}, *requested])
    back = form_tracker(3, QUALITY, [*earlier, *listened("运费谁出"),
                                     {"event": "action", "name": "action_answer_shipping_fee"}], {}, "confirmed")
    assert not rasa_will_reject(back, requested)
    starting = form_tracker(3, {}, [*earlier, *listened("质量太差")], {}, None)
    assert not rasa_will_reject(starting, [{"event": "slot", "name": "requested_slot", "value": "order_no"}])


def test_back_in_the_form_after_another_answer_the_question_is_asked_again(services):
    before = [*listened("运费谁出"), {"event": "action", "name": "action_answer_shipping_fee"},
              {"event": "bot", "text": "来回运费都由商家承担"}]
    messages, events = validate(form_tracker(3, {**QUALITY, "evidence": "later"}, before, {}, "confirmed"))
    assert responses(messages) == ["utter_quote", "utter_confirm_application"]
    assert slot_events(events)["quoted_total_fen"] == 19900.0


def test_an_order_that_vanished_gets_a_chinese_sentence_instead_of_the_question(services):
    """Buyer 3 naming buyer 2's order (as if it was in the slot): the items question cannot be built."""
    before = [*listened("运费谁出"), {"event": "action", "name": "action_answer_shipping_fee"}]
    t = form_tracker(3, {"reason": "quality", "order_no": "202611200000000201"}, before, {}, "picks")
    dispatcher = CollectingDispatcher()
    events = ValidateAfterSaleForm.ask(dispatcher, t, [{"event": "slot", "name": "requested_slot", "value": "picks"}])
    assert events == [] and responses(dispatcher.messages) == ["utter_error_generic"]
    assert "找不到这个订单号" in dispatcher.messages[0]["message"]


def test_the_domain_has_no_ask_of_its_own_for_the_slots_the_validation_asks():
    """Else Rasa would ask a second time (forms.py _name_of_utterance searches these names)."""
    names = {name for item in DOMAIN["actions"] for name in ([item] if isinstance(item, str) else item)}
    assert "validate_after_sale_form" in names and "action_submit_after_sale" in names
    for slot in ("order_no", "picks", "confirmed"):
        for name in (f"action_ask_{FORM}_{slot}", f"utter_ask_{FORM}_{slot}", f"action_ask_{slot}",
                     f"utter_ask_{slot}"):
            assert name not in names and name not in DOMAIN["responses"], name
