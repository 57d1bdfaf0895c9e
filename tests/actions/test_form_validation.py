"""The form's validation starts the application, asks the questions about orders, items and the quote, and
submits the application when the form is filled, each in the one action call Rasa makes for that turn.

The trackers here have the shape Rasa 3.6 gives the validation (rasa/core/actions/forms.py _temporary_tracker):
the conversation, then SlotSet(requested_slot), ActionExecuted(the form) and the slots just extracted.
"""

import asyncio
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.after_sale import ValidateAfterSaleForm, activated_now, rasa_will_reject
from bot.persistence.models import AfterSale
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


def starting(buyer: int, text: str, intent: str, earlier: dict[str, Any] | None = None,
             entities: list[dict] | None = None) -> Tracker:
    """The turn that activates the form: Rasa puts the form's ActiveLoop event in the turn, and hands over the
    slots already filled (an earlier application's, say) as candidates (forms.py _activate_loop, activate)."""
    before = [*listened(text), {"event": "active_loop", "name": FORM}]
    t = form_tracker(buyer, {}, before, earlier or {}, None, text, intent)
    t.latest_message["entities"] = entities or []
    return t


def test_the_start_notes_the_reason_apologises_and_picks_the_only_order(services):
    messages, events = validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    assert responses(messages) == ["utter_apologise_reason"]  # the photos are asked by Rasa (utter_ask_evidence)
    slots = slot_events(events)
    assert slots["reason"] == "quality" and slots["order_no"] == ORDER and slots["buyer_words"] == "衣服开线了我要退货"
    assert slots["picks"] == "all"  # checked like any answer: the order has one line
    assert slots["requested_slot"] == "evidence"  # quality: photos, asked by Rasa with utter_ask_evidence


def test_several_orders_are_offered_as_buttons_when_the_form_starts(services):
    messages, events = validate(starting(1, "质量太差", "reason_quality"))
    assert responses(messages) == ["utter_apologise_reason", "utter_choose_order"]
    slots = slot_events(events)
    assert slots["order_no"] is None and slots["requested_slot"] == "order_no"
    assert all(b["payload"].startswith('/inform{"order_no":"') for b in messages[1]["buttons"])


def test_an_order_number_in_the_message_wins(services):
    t = starting(1, "202611200000000104 这单质量太差", "reason_quality",
                 entities=[{"entity": "order_no", "value": "202611200000000104"}])
    messages, events = validate(t)
    slots = slot_events(events)
    assert slots["order_no"] == "202611200000000104" and slots["requested_slot"] == "picks"
    assert responses(messages) == ["utter_apologise_reason", "utter_choose_items"]


def test_an_earlier_applications_answers_are_forgotten_not_checked_again(services):
    """Buyer 3 gave up an application for another order; its answers are still in the slots."""
    earlier = {"order_no": "202611200000000201", "picks": "7:1", "evidence": "later", "confirmed": True}
    messages, events = validate(starting(3, "衣服开线了我要退货", "reason_quality", earlier))
    slots = slot_events(events)
    assert slots["order_no"] == ORDER and slots["picks"] == "all" and slots["requested_slot"] == "evidence"
    assert "utter_error_generic" not in responses(messages)  # order 201 is not hers: it was not checked
    assert all(slots[s] is None for s in ("evidence", "confirmed", "refund_account", "earlier_reasons"))


def test_an_unknown_buyer_gets_a_chinese_sentence_when_the_form_starts(services):
    t = starting(3, "衣服开线了我要退货", "reason_quality")
    t.sender_id = "someone"
    dispatcher = CollectingDispatcher()
    assert ValidateAfterSaleForm.start(dispatcher, t) == []
    assert responses(dispatcher.messages) == ["utter_error_generic"] and "身份" in dispatcher.messages[0]["message"]


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


def test_whether_rasa_rejects_or_activates_depends_on_the_turn_only():
    """The same turn after a whole earlier conversation (an action that reads the history is sent all of it)."""
    earlier = [*listened("你好"), {"event": "action", "name": "utter_greet"}, {"event": "bot", "text": "您好"},
               *listened("质量太差"), {"event": "active_loop", "name": FORM}, {"event": "action", "name": FORM}]
    requested = [{"event": "slot", "name": "requested_slot", "value": "confirmed"}]
    answered = form_tracker(3, QUALITY, [*earlier, *listened("运费谁出")], {}, "confirmed")
    assert rasa_will_reject(answered, requested)
    assert not rasa_will_reject(answered, [{"event": "slot", "name": "confirmed", "value": True}, *requested])
    back = form_tracker(3, QUALITY, [*earlier, *listened("运费谁出"),
                                     {"event": "action", "name": "action_answer_shipping_fee"}], {}, "confirmed")
    assert not rasa_will_reject(back, requested)
    assert not activated_now(answered) and not activated_now(back)  # the form started turns ago
    opening = starting(3, "质量太差", "reason_quality")
    assert activated_now(opening)
    assert not rasa_will_reject(opening, [{"event": "slot", "name": "requested_slot", "value": "order_no"}])


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
    assert "validate_after_sale_form" in names and "action_answer_shipping_fee" in names
    for slot in ("order_no", "picks", "confirmed"):
        for name in (f"action_ask_{FORM}_{slot}", f"utter_ask_{FORM}_{slot}", f"action_ask_{slot}",
                     f"utter_ask_{slot}"):
            assert name not in names and name not in DOMAIN["responses"], name


def test_confirming_submits_in_the_same_call(services):
    t = form_tracker(3, {**QUALITY, "evidence": "later", "quoted_total_fen": 19900.0}, listened("确认"),
                     {"confirmed": True}, "confirmed", "确认", "affirm")
    messages, events = validate(t)
    assert responses(messages)[0] == "utter_submitted" and responses(messages)[-1] == "utter_anti_scam"
    slots = slot_events(events)
    assert slots["requested_slot"] is None  # the form ends; Rasa's rule then waits for the buyer
    assert slots["request_id"] > 0 and slots["order_no"] is None and slots["confirmed"] is None
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AfterSale)) == 1


def test_a_whole_application_logs_no_warning(services, caplog):
    """Every slot the form fills has a validator: rasa_sdk warns about each one without, on every turn."""
    caplog.set_level("WARNING", logger="rasa_sdk")
    validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    validate(form_tracker(3, QUALITY, listened("/deny"), {"evidence": "later"}, "evidence", "/deny", "deny"))
    messages, _ = validate(form_tracker(3, {**QUALITY, "evidence": "later", "quoted_total_fen": 19900.0},
                                        listened("确认"), {"confirmed": True}, "confirmed", "确认", "affirm"))
    assert responses(messages)[0] == "utter_submitted"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rasa_sdk")] == []


def test_declining_ends_the_application_without_a_request(services):
    t = form_tracker(3, {**QUALITY, "evidence": "later"}, listened("/deny"), {"confirmed": False}, "confirmed",
                     "/deny", "deny")
    messages, events = validate(t)
    assert responses(messages) == ["utter_cancelled_application"]
    assert slot_events(events)["requested_slot"] is None and slot_events(events)["order_no"] is None
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AfterSale)) == 0


def test_a_question_asked_is_not_a_submission(services):
    t = form_tracker(3, QUALITY, listened("/deny"), {"evidence": "later"}, "evidence", "/deny", "deny")
    messages, _ = validate(t)
    assert "utter_submitted" not in responses(messages) and "utter_cancelled_application" not in responses(messages)


def test_nothing_is_submitted_from_a_turn_rasa_will_reject(services):
    """All slots were filled before this turn (the shop's rules changed under the form, say) and the buyer's
    message filled nothing: Rasa drops this run, so the validation must not end the application in it."""
    t = form_tracker(3, {**QUALITY, "evidence": "later", "confirmed": False}, listened("运费谁出"), {}, "confirmed",
                     "运费谁出", "ask_shipping_fee")
    messages, events = validate(t)
    assert messages == [] and slot_events(events) == {"requested_slot": None}


def test_the_start_works_the_quote_out_once(services, monkeypatch):
    """rasa_sdk asks for the required slots before and after checking the order, which sets the items to "all"
    (one line): no items chosen and all of them are the same quote, read from the database once."""
    from bot.services import after_sales

    quotes = []
    real = after_sales.quote
    monkeypatch.setattr(after_sales, "quote", lambda *a, **k: quotes.append(k) or real(*a, **k))
    _, events = validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    assert slot_events(events)["picks"] == "all" and len(quotes) == 1


def test_the_start_reads_the_buyers_orders_once(services, monkeypatch):
    """The start picks the only order from the buyer's orders, and checking it needs no second read."""
    import actions.after_sale as after_sale

    reads = []
    for name in ("orders_of_buyer", "order_of_buyer"):
        real = getattr(after_sale, name)
        monkeypatch.setattr(after_sale, name, lambda *a, _real=real, _name=name: reads.append(_name) or _real(*a))
    _, events = validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    assert slot_events(events)["order_no"] == ORDER and reads == ["orders_of_buyer"]
    reads.clear()
    _, events = validate(starting(1, "质量太差", "reason_quality"))  # several orders: the question reads none
    assert slot_events(events)["requested_slot"] == "order_no" and reads == ["orders_of_buyer"]


def test_confirming_a_request_already_submitted_answers_with_it(services):
    """The 确认 went through once, but no Rasa replica recorded that turn (the replica died while its action call
    finished): the buyer says 确认 again. The form answers with the request, not with a question for an account."""
    confirm = form_tracker(3, {**QUALITY, "evidence": "later", "quoted_total_fen": 19900.0}, listened("确认"),
                           {"confirmed": True}, "confirmed", "确认", "affirm")
    _, first = validate(confirm)
    request_id = slot_events(first)["request_id"]
    messages, events = validate(confirm)
    assert responses(messages) == ["utter_already_requested"]
    assert messages[0]["request_id"] == request_id and messages[0]["items"] == "针织开衫×1"
    assert "商家审核中" in messages[0]["status_text"]  # where it stands, with its deadline
    slots = slot_events(events)
    assert slots["requested_slot"] is None and slots["request_id"] == request_id and slots["order_no"] is None
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AfterSale)) == 1


def test_a_new_application_for_items_in_a_request_ends_with_that_request(services):
    """Buyer 3's only order is under review: asking again names the request instead of asking for photos."""
    after_sales_submit(services)
    messages, events = validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    assert responses(messages) == ["utter_apologise_reason", "utter_already_requested"]
    assert slot_events(events)["requested_slot"] is None
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AfterSale)) == 1


def test_items_taken_by_a_request_that_closed_meanwhile_get_the_plain_reason(services, monkeypatch):
    """The quote found the items held, but the request closed before it was read: say why, not nothing."""
    import actions.after_sale as after_sale

    after_sales_submit(services)
    monkeypatch.setattr(after_sale, "open_facts_on_order", lambda *a: [])
    messages, events = validate(starting(3, "衣服开线了我要退货", "reason_quality"))
    assert responses(messages) == ["utter_apologise_reason", "utter_error_generic"]
    assert "已经在售后中" in messages[1]["message"] and slot_events(events)["requested_slot"] is None


def after_sales_submit(services) -> None:
    from bot.services import after_sales

    after_sales.submit(services, buyer_id=3, order_no=ORDER, reason="quality", words="开线了")


TWO_LINES = "202611200000000104"  # buyer 1: 针织开衫 ×1 (line 4) and 棉袜三双装 ×2 (line 5)


def items_question(services) -> list[dict]:
    before = listened(f'/inform{{"order_no":"{TWO_LINES}"}}')
    messages, events = validate(form_tracker(1, {"reason": "quality"}, before, {"order_no": TWO_LINES}, "order_no"))
    assert slot_events(events)["requested_slot"] == "picks"
    return messages


def test_the_items_question_offers_only_what_a_new_request_can_take(services):
    from bot.domain.money import Pick
    from bot.services import after_sales

    after_sales.submit(services, buyer_id=1, order_no=TWO_LINES, reason="quality", picks=[Pick(5, 1)])
    messages = items_question(services)
    assert responses(messages) == ["utter_choose_items"]  # one pair of socks is left: still offered
    assert [b["title"] for b in messages[0]["buttons"]] == ["针织开衫（米白 M）×1", "棉袜三双装（混色 均码）×1", "全部商品"]
    after_sales.submit(services, buyer_id=1, order_no=TWO_LINES, reason="quality", picks=[Pick(4, 1)])
    messages = items_question(services)
    assert responses(messages) == ["utter_items_taken", "utter_choose_items"]
    assert messages[0]["items"] == "针织开衫"
    assert [b["payload"] for b in messages[1]["buttons"]] == ['/inform{"picks":"5:1"}', '/inform{"picks":"all"}']
    assert messages[1]["buttons"][-1]["title"] == "其余全部商品"


def test_picking_items_a_request_holds_asks_again(services):
    from bot.domain.money import Pick
    from bot.services import after_sales

    after_sales.submit(services, buyer_id=1, order_no=TWO_LINES, reason="quality", picks=[Pick(4, 1)])
    slots = {"reason": "quality", "order_no": TWO_LINES}
    t = form_tracker(1, slots, listened('/inform{"picks":"4:1"}'), {"picks": "4:1"}, "picks")
    messages, events = validate(t)
    assert responses(messages) == ["utter_items_taken", "utter_choose_items"]  # named once, by the question
    assert messages[0]["items"] == "针织开衫" and slot_events(events)["picks"] is None
    t = form_tracker(1, slots, listened('/inform{"picks":"5:2"}'), {"picks": "5:2"}, "picks")
    _, events = validate(t)
    assert slot_events(events)["picks"] == "5:2"  # the socks are free: the answer stands
    after_sales.submit(services, buyer_id=1, order_no=TWO_LINES, reason="quality", picks=[Pick(5, 1)])
    messages, events = validate(t)
    assert responses(messages)[0] == "utter_error_generic" and slot_events(events)["picks"] is None
    assert messages[0]["message"] == "棉袜三双装还可以申请1件，其余的已经在售后中或已经退款了。"


def test_slot_events_that_change_nothing_are_left_out():
    """Replaced ones and ones setting the value the slot had; `requested_slot` (Rasa's instruction: ask, or stop)
    and the slots Rasa handed over to be checked always stay."""
    from actions.after_sale import without_idle_slot_events

    events = [SlotSet("picks", None), SlotSet("order_no", "1"), {"event": "bot", "text": "好的"},
              SlotSet("order_no", "2"), SlotSet("requested_slot", "evidence"), SlotSet("requested_slot", "evidence"),
              SlotSet("evidence", "later"), SlotSet("evidence", "later"), SlotSet("reason", "quality"),
              SlotSet("confirmed", None)]
    before = {"picks": None, "order_no": None, "requested_slot": "evidence", "evidence": None, "reason": "quality",
              "confirmed": True}
    assert without_idle_slot_events(events, before, handed_over={"evidence"}) == [
        {"event": "bot", "text": "好的"}, SlotSet("order_no", "2"), SlotSet("requested_slot", "evidence"),
        SlotSet("requested_slot", "evidence"), SlotSet("evidence", "later"), SlotSet("evidence", "later"),
        SlotSet("confirmed", None)]


def test_the_start_of_a_first_application_sets_only_what_changes(services):
    """A fresh conversation: the earlier application's answers are all None already, so the start sets only the
    reason, the buyer's words, the order and what the form asks next, each once."""
    t = starting(3, "衣服开线了我要退货", "reason_quality")
    # As Rasa sends it: every slot of the domain, at its initial value unless set.
    t.slots = {**{name: slot.get("initial_value") for name, slot in DOMAIN["slots"].items()}, **t.slots}
    _, events = validate(t)
    names = [e["name"] for e in events if e.get("event") == "slot" and e["name"] != "requested_slot"]
    assert sorted(names) == ["buyer_words", "order_no", "picks", "reason", "reason_confidence"]
