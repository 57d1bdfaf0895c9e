"""Custom actions on real trackers and a real database: what the buyer sees and what is stored."""

import asyncio

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.after_sale import ValidateAfterSaleForm, ask_confirmed
from actions.conversation import (
    ActionCancelOrder, ActionEscalate, ActionExplainClosed, ActionHandoff, ActionScamReport,
    ActionTakeTrackingNumber,
)
from actions.status import ActionRefundStatus
from bot.domain.workflow import Role
from bot.persistence.models import AfterSale, Order, Task
from bot.services import after_sales
from bot.services.after_sales import Actor
from tests.actions.conftest import DOMAIN, responses, run, slot_events, tracker

REVIEWER = Actor("staff:li", Role.REVIEWER)
SLICE = {"order_no": "202611200000000301", "picks": "all", "reason": "quality", "buyer_words": "开线了",
         "evidence": "later"}


def step(form_step, t) -> tuple[list[dict], list[dict]]:
    """(messages, events) of one step the form's validation takes: a question, or the submission."""
    dispatcher = CollectingDispatcher()
    return dispatcher.messages, form_step(dispatcher, t)


SUBMIT = ValidateAfterSaleForm.submit


def test_confirmation_shows_the_computed_refund_and_freight(services):
    messages, events = step(ask_confirmed, tracker(3, slots=SLICE))
    quote = next(m for m in messages if m["response"] == "utter_quote")
    assert quote["total"] == "¥199.00" and "商家承担" in quote["explanation"]
    assert responses(messages)[-1] == "utter_confirm_application"
    assert slot_events(events)["quoted_total_fen"] == 19900.0  # what the buyer is asked to confirm


def test_submit_sends_the_amount_the_buyer_confirmed(services):
    messages, _ = step(SUBMIT, tracker(3, slots={**SLICE, "confirmed": True,
                                                                 "quoted_total_fen": 19900.0}))
    assert responses(messages)[0] == "utter_submitted"
    with services.sessions() as session:
        assert session.scalar(select(AfterSale.refund_fen + AfterSale.freight_refund_fen)) == 19900


def test_a_reason_the_shop_does_not_accept_is_explained_and_nothing_is_submitted(services, clock):
    """色差 more than 7 days after receipt: the form stops before asking to confirm, and submit explains."""
    clock.advance(days=30)
    slots = {**SLICE, "reason": "color_difference"}
    messages, events = step(SUBMIT, tracker(3, slots=slots))
    assert responses(messages) == ["utter_not_accepted"] and messages[0]["explanation"]
    assert slot_events(events)["order_no"] is None
    # Confirmed while the rules still allowed it, refused by the time of submitting: explained as well.
    messages, _ = step(SUBMIT, tracker(3, slots={**slots, "confirmed": True}))
    assert responses(messages) == ["utter_not_accepted"] and messages[0]["explanation"]
    with services.sessions() as session:
        assert session.scalar(select(AfterSale)) is None


def test_an_amount_that_changed_after_the_buyer_saw_it_is_not_submitted(services):
    """The buyer confirmed ¥199.00; if the system's amount differs by the time of submitting, the buyer hears
    both amounts, nothing is created, and the application starts over."""
    messages, events = step(SUBMIT, tracker(3, slots={**SLICE, "confirmed": True,
                                                                      "quoted_total_fen": 25900.0}))
    assert responses(messages) == ["utter_amount_changed"]
    assert (messages[0]["shown"], messages[0]["now"]) == ("¥259.00", "¥199.00")
    with services.sessions() as session:
        assert session.scalar(select(AfterSale)) is None
    assert slot_events(events)["quoted_total_fen"] is None and slot_events(events)["confirmed"] is None


def test_submit_creates_the_request_and_a_phone_task(services):
    messages, events = step(SUBMIT, tracker(3, slots={**SLICE, "confirmed": True}))
    assert responses(messages)[0] == "utter_submitted"
    assert "utter_submitted_phone_call" in responses(messages) and "utter_anti_scam" in responses(messages)
    with services.sessions() as session:
        request = session.scalar(select(AfterSale))
        assert request is not None and request.status == "requested"
        assert session.scalar(select(Task).where(Task.kind == "phone_call")) is not None
    assert slot_events(events)["request_id"] == float(request.id)


def test_submit_declined_creates_nothing(services):
    messages, _ = step(SUBMIT, tracker(3, slots={**SLICE, "confirmed": False}))
    assert responses(messages) == ["utter_cancelled_application"]
    with services.sessions() as session:
        assert session.scalar(select(AfterSale)) is None


def test_someone_elses_order_number_is_refused_kindly(services):
    form = ValidateAfterSaleForm()
    dispatcher_messages = []
    dispatcher = CollectingDispatcher()
    result = asyncio.run(form.validate_order_no("202611200000000201", dispatcher, tracker(1), DOMAIN))
    dispatcher_messages = dispatcher.messages
    assert result["order_no"] is None
    assert "找不到这个订单号" in dispatcher_messages[0]["message"]


def test_quantity_above_bought_is_refused_with_the_number(services):
    with services.sessions() as session:
        order = session.scalar(select(Order).where(Order.order_no == "202611200000000104"))
        socks = order.items[1].id
    dispatcher = CollectingDispatcher()
    result = asyncio.run(ValidateAfterSaleForm().validate_picks(
        f"{socks}:5", dispatcher, tracker(1, slots={"order_no": "202611200000000104"}), DOMAIN))
    assert result["picks"] is None
    assert dispatcher.messages[0]["response"] == "utter_quantity_too_large" and dispatcher.messages[0]["bought"] == 2


def test_a_changed_reason_is_kept_and_asks_for_evidence(services):
    t = tracker(3, intent="reason_quality", slots={"reason": "dislike"}, active_loop="after_sale_form")
    result = asyncio.run(ValidateAfterSaleForm().extract_reason(CollectingDispatcher(), t, DOMAIN))
    assert result["reason"] == "quality" and result["earlier_reasons"] == ["dislike"]
    assert result["reason_changed"] is True  # utter_ask_evidence then says why photos are needed


def test_tracking_number_is_taken_for_the_request_awaiting_return(services):
    view = after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="quality")
    after_sales.act(services, view.id, "approve_return", actor=REVIEWER)
    entities = [{"entity": "tracking_no", "value": "SF1234567890123"}, {"entity": "courier", "value": "SF"}]
    messages, _ = run(ActionTakeTrackingNumber(), tracker(3, intent="give_tracking_number", entities=entities))
    assert responses(messages) == ["utter_tracking_recorded"]
    assert after_sales.requests_of_buyer(services, 3)[0].status == "return_shipped"


def test_malformed_tracking_number_gets_a_chinese_error_and_changes_nothing(services):
    view = after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="quality")
    after_sales.act(services, view.id, "approve_return", actor=REVIEWER)
    entities = [{"entity": "tracking_no", "value": "75123456789012"}, {"entity": "courier", "value": "SF"}]
    messages, _ = run(ActionTakeTrackingNumber(), tracker(3, intent="give_tracking_number", entities=entities))
    assert "格式不对" in messages[0]["message"]
    assert after_sales.requests_of_buyer(services, 3)[0].status == "awaiting_return"


def test_status_names_who_acts_next_and_the_deadline(services):
    after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="quality")
    messages, _ = run(ActionRefundStatus(), tracker(3, intent="ask_refund_progress"))
    assert "商家审核中" in messages[0]["status_text"] and "自动同意" in messages[0]["status_text"]


def test_escalation_within_the_window_then_explained_after_it(services, clock):
    view = after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="dislike")
    after_sales.act(services, view.id, "reject", actor=REVIEWER, reason="商品已穿过，影响二次销售")
    messages, _ = run(ActionExplainClosed(), tracker(3, intent="ask_why_closed"))
    assert messages[0]["note"] == "商品已穿过，影响二次销售"
    clock.advance(days=3, seconds=1)
    from bot.services.timers import sweep_due

    sweep_due(services)
    messages, _ = run(ActionEscalate(), tracker(3, intent="escalate"))
    assert responses(messages) == ["utter_escalate_window_passed"]


def test_escalation_inside_the_window_goes_to_the_platform(services):
    view = after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="dislike")
    after_sales.act(services, view.id, "reject", actor=REVIEWER, reason="已过七天")
    messages, _ = run(ActionEscalate(), tracker(3, intent="escalate"))
    assert responses(messages) == ["utter_escalated"]
    assert after_sales.requests_of_buyer(services, 3)[0].status == "escalated"


def test_cancel_offers_a_choice_when_several_orders_can_be_cancelled(services):
    messages, _ = run(ActionCancelOrder(), tracker(1, intent="cancel_order"))
    assert responses(messages) == ["utter_choose_order_to_cancel"] and len(messages[0]["buttons"]) == 2


def test_scam_report_warns_hands_over_and_pauses_without_refund_step(services):
    messages, events = run(ActionScamReport(), tracker(3, text="客服让我开借呗", intent="report_scam"))
    assert responses(messages) == ["utter_scam_warning"]
    assert any(e["event"] == "pause" for e in events)
    with services.sessions() as session:
        kinds = set(session.scalars(select(Task.kind)))
        assert {"scam_report", "handoff"} <= kinds
        assert session.scalar(select(AfterSale)) is None


def test_handoff_pauses_the_bot(services):
    messages, events = run(ActionHandoff(), tracker(3, text="转人工", intent="request_human"))
    assert responses(messages) == ["utter_handoff"] and events[-1]["event"] == "pause"


def test_unknown_sender_gets_a_chinese_sentence_not_a_trace(services):
    messages, _ = run(ActionRefundStatus(), tracker(text="退款呢", intent="ask_refund_progress", sender="someone"))
    assert messages[0]["response"] == "utter_error_generic" and "身份" in messages[0]["message"]


def test_a_database_that_refuses_connections_gives_an_apology(services, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def refuse(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "sessions", refuse)
    messages, _ = step(SUBMIT, tracker(3, slots={**SLICE, "confirmed": True}))
    assert responses(messages) == ["utter_error_backend"]


def test_every_response_an_action_sends_exists_in_the_domain():
    import re
    from pathlib import Path

    code = "\n".join(p.read_text(encoding="utf-8") for p in Path("actions").glob("*.py"))
    for name in set(re.findall(r'response="(utter_[a-z_]+)"', code)):
        assert name in DOMAIN["responses"], name


def test_size_offers_an_exchange_first_with_a_way_to_return(services):
    slots = {"order_no": "202611200000000301", "picks": "all", "reason": "size"}
    messages, _ = step(ask_confirmed, tracker(3, slots=slots))
    ask = messages[-1]
    assert ask["response"] == "utter_confirm_exchange_first"
    assert [b["title"] for b in ask["buttons"]] == ["确认换货", "改为退货退款", "先不了"]
    messages, _ = step(ask_confirmed, tracker(3, slots={**slots, "resolution": "return_refund"}))
    assert messages[-1]["response"] == "utter_confirm_application" and messages[-1]["kind_label"] == "退货退款"


def test_chat_resolution_words_choose_the_kind(services):
    quote = after_sales.quote(services, buyer_id=3, order_no="202611200000000301", reason="missing_item",
                              resolution="refund_only")
    assert quote.kind.value == "refund_only"


def test_a_token_of_one_buyer_does_not_open_another_buyers_conversation(services):
    from bot.identity import buyer_token
    from bot.settings import load_settings

    token = buyer_token(2, load_settings().secret_key)
    messages, _ = run(ActionRefundStatus(), tracker(1, intent="ask_refund_progress",
                                                    metadata={"buyer_token": token}))
    assert messages[0]["response"] == "utter_error_generic" and "登录" in messages[0]["message"]
    messages, _ = run(ActionRefundStatus(), tracker(2, intent="ask_refund_progress",
                                                    metadata={"buyer_token": token}))
    assert messages[0]["response"] == "utter_no_requests"


def test_a_notice_sent_twice_is_said_once(services):
    from actions.status import ActionNotifyUpdate
    from rasa_sdk import Tracker

    view = after_sales.submit(services, buyer_id=3, order_no="202611200000000301", reason="quality")
    entities = [{"entity": "request_id", "value": view.id}, {"entity": "notice_id", "value": 7}]
    first = {"event": "user", "text": "EXTERNAL", "parse_data": {"entities": entities}}
    message = {"text": "", "intent": {"name": "EXTERNAL_request_update"}, "entities": entities}
    once = Tracker("buyer-3", {}, message, [first], False, None, {}, "action_listen")
    twice = Tracker("buyer-3", {}, message, [first, dict(first)], False, None, {}, "action_listen")
    assert responses(run(ActionNotifyUpdate(), once)[0]) == ["utter_update"]
    assert run(ActionNotifyUpdate(), twice)[0] == []


def test_the_settings_are_read_once_per_environment(monkeypatch):
    """Reading the settings reads the secret files: actions read them once per set of BOT_* variables."""
    import actions.common as common

    reads = []
    monkeypatch.setattr(common, "load_settings", lambda: reads.append(1) or load_settings_now())
    from bot.settings import load_settings as load_settings_now

    monkeypatch.setenv("BOT_DEFAULT_SHOP", "shop-a")
    assert common.current_settings().default_shop == "shop-a" and common.current_settings().default_shop == "shop-a"
    assert len(reads) == 1
    monkeypatch.setenv("BOT_DEFAULT_SHOP", "shop-b")
    assert common.current_settings().default_shop == "shop-b"
    assert len(reads) == 2
