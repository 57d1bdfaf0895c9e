"""Everything a buyer asks outside the application form: tracking numbers, address, escalation,
closed requests, cancelling, delivery problems, the 7-day right, people and scams."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, ConversationResumed, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ServiceAction, buyer_id_of, shop_of, text_of
from bot.clock import format_local
from bot.domain.workflow import Status
from bot.domain.couriers import BY_CODE
from bot.domain.errors import BadTrackingNumber
from bot.services import after_sales, tasks
from bot.services.after_sales import buyer_actor
from bot.services.orders import orders_of_buyer
from bot.identity import buyer_from_sender
from bot.services.buyer_views import latest_request, order_timing
from bot.services.status import facts_of_buyer

# Short Chinese labels of intents, for "您是想…吗？" when the model is unsure.
INTENT_LABELS = {
    "request_refund": "申请退款", "request_return": "申请退货退款", "request_exchange": "申请换货",
    "cancel_order": "取消订单", "not_received": "反映没收到货", "ask_refund_progress": "查询退款进度",
    "urge": "催促处理", "ask_shipping_fee": "问运费谁出", "give_tracking_number": "填写退货单号",
    "ask_return_address": "问退货地址", "escalate": "申请平台介入/投诉", "ask_why_closed": "问售后为什么被关闭",
    "ask_no_reason_return": "问七天无理由退货", "request_human": "转人工客服", "report_scam": "举报可疑的“客服”",
    "reason_quality": "因为质量问题退换", "reason_size": "因为尺码不合适退换", "reason_color_difference": "因为色差退换",
    "reason_dislike": "因为不喜欢退换", "reason_wrong_item": "因为发错货退换", "reason_missing_item": "因为少发漏发申请售后",
    "reason_not_as_described": "因为与描述不符退换", "reason_other": "申请退换", "greet": "打个招呼",
    "thank": "表示感谢", "goodbye": "结束对话", "affirm": "确认", "deny": "否定", "stop": "不办了",
    "inform": "补充信息",
}
CLOSED_LABELS = {"closed": "已关闭", "rejected": "被商家拒绝", "refund_refused": "商家拒绝退款",
                 "cancelled": "已撤销"}


class ActionTakeTrackingNumber(ServiceAction):
    def name(self) -> str:
        return "action_take_tracking_number"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        number = next(tracker.get_latest_entity_values("tracking_no"), None)
        courier = next(tracker.get_latest_entity_values("courier"), None)
        request = latest_request(self.services, buyer_id, {Status.AWAITING_RETURN.value})
        if request is None:
            dispatcher.utter_message(response="utter_no_request_awaiting_return")
            return []
        if not number:
            dispatcher.utter_message(response="utter_error_generic", message="请把退货的快递单号发给我，例如：顺丰 SF1234567890123")
            return []
        try:
            view = after_sales.ship_back(self.services, request.id, buyer_id=buyer_id, tracking_no=number,
                                         courier=courier)
        except BadTrackingNumber:
            if courier is None:
                dispatcher.utter_message(response="utter_tracking_needs_courier")
                return []
            raise
        dispatcher.utter_message(response="utter_tracking_recorded", request_id=view.id,
                                 courier=BY_CODE[courier].name if courier in BY_CODE else "",
                                 tracking_no=number.upper(),
                                 deadline=format_local(view.deadline_at) if view.deadline_at else "")
        return []


class ActionReturnAddress(ServiceAction):
    def name(self) -> str:
        return "action_return_address"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        facts = [f for f in facts_of_buyer(self.services, buyer_id) if f.status == Status.AWAITING_RETURN.value]
        address = facts[0].address if facts else self.services_address(tracker)
        hint = f"，请在{facts[0].deadline}前寄出" if facts else ""
        dispatcher.utter_message(response="utter_return_address", address=address, deadline_hint=hint)
        return []

    def services_address(self, tracker: Tracker) -> str:
        from sqlalchemy import select

        from bot.persistence.models import Shop

        with self.services.sessions() as session:
            shop = session.scalar(select(Shop).where(Shop.code == shop_of(tracker)))
            return shop.return_address if shop else ""


class ActionEscalate(ServiceAction):
    """维权 within the window; explain when it has passed; calm a threat when there is nothing to escalate."""

    def name(self) -> str:
        return "action_escalate"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        request = latest_request(self.services, buyer_id, None)
        if request is None:
            dispatcher.utter_message(response="utter_escalate_no_request")
            return []
        if request.status in (Status.REJECTED.value, Status.REFUND_REFUSED.value):
            view = after_sales.act(self.services, request.id, "escalate", actor=buyer_actor(buyer_id), buyer_id=buyer_id)
            dispatcher.utter_message(response="utter_escalated", request_id=view.id)
            return []
        if request.status == Status.CLOSED.value and request.escalation_expired:
            dispatcher.utter_message(response="utter_escalate_window_passed", request_id=request.id,
                                     reapply=reapply_text(domain, request.trade_open))
            return []
        if request.status == Status.ESCALATED.value:
            dispatcher.utter_message(response="utter_status_escalated")
            return []
        facts = next((f for f in facts_of_buyer(self.services, buyer_id) if f.request_id == request.id), None)
        status_text = text_of(domain, f"utter_status_{request.status}", **facts.as_dict()) if facts else ""
        policy = self.services.policies(shop_of(tracker))
        days = policy.timer("escalate_after_rejection").days
        dispatcher.utter_message(response="utter_escalate_not_allowed", request_id=request.id,
                                 status_text=status_text.rstrip("。"), window=f"{days}天")
        return []


def reapply_text(domain: dict[str, Any], trade_open: bool) -> str:
    return text_of(domain, "utter_reapply_open" if trade_open else "utter_reapply_complaint")


class ActionExplainClosed(ServiceAction):
    def name(self) -> str:
        return "action_explain_closed"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        request = latest_request(self.services, buyer_id, set(CLOSED_LABELS))
        if request is None:
            dispatcher.utter_message(response="utter_nothing_closed")
            return []
        dispatcher.utter_message(response="utter_closed_explained", request_id=request.id, items=request.items,
                                 status_label=CLOSED_LABELS[request.status], note=request.explanation)
        dispatcher.utter_message(response="utter_error_generic", message=reapply_text(domain, request.trade_open))
        if request.trade_open and request.status != Status.REJECTED.value:
            dispatcher.utter_message(response="utter_reapply_button")
        elif request.status == Status.REJECTED.value and request.escalation_open:
            dispatcher.utter_message(response="utter_error_generic",
                                     message=f"如果对结果有异议，您可以在{request.escalation_deadline}前申请平台介入，回复“申请平台介入”即可。")
        return []


class ActionCancelOrder(ServiceAction):
    def name(self) -> str:
        return "action_cancel_order"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        named = next(tracker.get_latest_entity_values("order_no"), None)
        candidates = [o for o in orders_of_buyer(self.services, buyer_id) if o.state in ("unconfirmed", "confirmed")]
        if named is None:
            if not candidates:
                dispatcher.utter_message(response="utter_no_order_to_cancel")
                return []
            if len(candidates) > 1:
                buttons = [{"title": f"{o.summary} · {o.state_label} · 尾号{o.order_no[-4:]}",
                            "payload": f'/cancel_order{{"order_no":"{o.order_no}"}}'} for o in candidates]
                dispatcher.utter_message(response="utter_choose_order_to_cancel", buttons=buttons)
                return []
            named = candidates[0].order_no
        outcome, view = after_sales.cancel_order(self.services, buyer_id=buyer_id, order_no=named,
                                                 words=tracker.latest_message.get("text") or "")
        if outcome == "cancelled":
            dispatcher.utter_message(response="utter_order_cancelled", order_no=named)
        else:
            assert view is not None
            dispatcher.utter_message(response="utter_cancel_became_refund", order_no=named, request_id=view.id,
                                     deadline=format_local(view.deadline_at) if view.deadline_at else "")
            dispatcher.utter_message(response="utter_anti_scam")
        return []


class ActionNotReceived(ServiceAction):
    def name(self) -> str:
        return "action_not_received"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        named = next(tracker.get_latest_entity_values("order_no"), None)
        timing = order_timing(self.services, buyer_id)
        shipped = [t for t in timing if t.state == "shipped" and (named is None or t.order_no == named)]
        signed = [t for t in timing if t.state == "received" and (named is None or t.order_no == named)]
        if shipped:
            t = shipped[0]
            dispatcher.utter_message(response="utter_in_transit", order_no=t.order_no, courier=t.courier_name,
                                     tracking_no=t.tracking_no)
            return []
        if signed:
            t = signed[0]
            tasks.open_task(self.services, kind="not_received", buyer_id=buyer_id, actor=buyer_actor(buyer_id),
                            note=f"订单 {t.order_no} 显示签收但买家说没收到：{tracker.latest_message.get('text', '')}")
            dispatcher.utter_message(response="utter_signed_not_received", order_no=t.order_no)
            return []
        dispatcher.utter_message(response="utter_no_shipped_order")
        return []


class ActionNoReasonReturn(ServiceAction):
    def name(self) -> str:
        return "action_no_reason_return"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        received = [t for t in order_timing(self.services, buyer_id_of(tracker)) if t.received_days is not None]
        if not received:
            dispatcher.utter_message(response="utter_no_reason_general")
            return []
        t = received[0]
        within = t.received_days < t.no_reason_days
        dispatcher.utter_message(response="utter_no_reason_within" if within else "utter_no_reason_passed",
                                 order_no=t.order_no)
        return []


class ActionHandoff(ServiceAction):
    """Hand the buyer to a person; the bot stays silent for this buyer until the agent hands back."""

    def name(self) -> str:
        return "action_handoff"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        tasks.open_task(self.services, kind="handoff", buyer_id=buyer_id, actor=buyer_actor(buyer_id),
                        note=tracker.latest_message.get("text") or "")
        dispatcher.utter_message(response="utter_handoff")
        return [ConversationPaused()]


class ActionScamReport(ServiceAction):
    """Warn clearly and hand over to a person; never a refund step."""

    def name(self) -> str:
        return "action_scam_report"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        buyer_id = buyer_id_of(tracker)
        dispatcher.utter_message(response="utter_scam_warning")
        tasks.open_task(self.services, kind="scam_report", buyer_id=buyer_id, actor=buyer_actor(buyer_id),
                        note=tracker.latest_message.get("text") or "")
        tasks.open_task(self.services, kind="handoff", buyer_id=buyer_id, actor=buyer_actor(buyer_id),
                        note="疑似诈骗举报，请人工跟进")
        return [SlotSet("confirmed", None), ConversationPaused()]

    def on_error(self, exc: Exception | None) -> list:  # type: ignore[override]
        # The warning matters more than the task: pause anyway so no refund step follows.
        return [ConversationPaused()]


class ActionRelayAgentMessage(ServiceAction):
    """An agent's words (sent from the console through Rasa's HTTP API) shown in the buyer's chat."""

    def name(self) -> str:
        return "action_relay_agent_message"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        text = next(tracker.get_latest_entity_values("agent_text"), None)
        if text:
            dispatcher.utter_message(response="utter_agent_message", agent_text=text)
        # The console resumes the conversation to deliver this; while a person has the buyer, stay quiet.
        buyer_id = buyer_from_sender(tracker.sender_id)
        if buyer_id is not None and tasks.buyer_in_handoff(self.services, buyer_id):
            return [ConversationPaused()]
        return []


class ActionHandback(ServiceAction):
    def name(self) -> str:
        return "action_handback"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        dispatcher.utter_message(response="utter_handback")
        return [ConversationResumed()]


class ActionDefaultAskAffirmation(ServiceAction):
    """First stage of the fallback: "您是想…吗？" with the model's best guess, as buttons."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        ranking = tracker.latest_message.get("intent_ranking") or []
        guess = next((r["name"] for r in ranking if r.get("name") not in ("nlu_fallback", "out_of_scope")), None)
        if guess is None or guess not in INTENT_LABELS:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        dispatcher.utter_message(response="utter_ask_affirmation", label=INTENT_LABELS[guess], intent=guess)
        return []
