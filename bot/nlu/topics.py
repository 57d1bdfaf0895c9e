"""Buyer intents, the return-reason codes they carry and the conversation topic of each.

Shared by the batch classifier, the NLU report and the actions. Imports nothing, so both the Rasa
environment and the application environment can use it.
"""

REASON_CODES: tuple[str, ...] = (
    "quality",
    "size",
    "color_difference",
    "dislike",
    "wrong_item",
    "missing_item",
    "not_as_described",
    "other",
)

# A message that gives a return reason is classified as `reason_<code>`, whether or not it also asks
# for a refund in so many words ("衣服开线了，我要退货" -> reason_quality). The resolution the buyer
# wants (退货/退款/换货) is an entity, so reason and resolution never compete for one label.
REASON_INTENT_PREFIX = "reason_"
REASON_INTENTS: tuple[str, ...] = tuple(REASON_INTENT_PREFIX + code for code in REASON_CODES)

TOPIC_OF_INTENT: dict[str, str] = {
    **{intent: "apply" for intent in REASON_INTENTS},
    "request_refund": "apply",
    "request_return": "apply",
    "ask_no_reason_return": "apply",
    "request_exchange": "exchange",
    "cancel_order": "cancel_order",
    "not_received": "not_received",
    "ask_refund_progress": "refund_progress",
    "urge": "refund_progress",
    "ask_shipping_fee": "shipping_fee",
    "give_tracking_number": "tracking_number",
    "ask_return_address": "tracking_number",
    "escalate": "escalate",
    "ask_why_closed": "closed_or_rejected",
    "request_human": "handoff",
    "report_scam": "scam_report",
    "greet": "other",
    "goodbye": "other",
    "thank": "other",
    "affirm": "other",
    "deny": "other",
    "stop": "other",
    "inform": "other",
    "out_of_scope": "other",
    "nlu_fallback": "other",
}

TOPICS: tuple[str, ...] = (
    "apply",
    "exchange",
    "cancel_order",
    "not_received",
    "refund_progress",
    "shipping_fee",
    "tracking_number",
    "escalate",
    "closed_or_rejected",
    "handoff",
    "scam_report",
    "other",
)


def reason_of_intent(intent: str) -> str | None:
    """The reason code an intent carries, or None when it gives no reason."""
    if intent.startswith(REASON_INTENT_PREFIX):
        code = intent[len(REASON_INTENT_PREFIX):]
        return code if code in REASON_CODES else None
    return None


def topic_of_intent(intent: str) -> str:
    """The conversation topic of an intent (unknown intents are `other`)."""
    return TOPIC_OF_INTENT.get(intent, "other")
