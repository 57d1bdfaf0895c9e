"""The follow-up visit (回访): ask whether the money or item arrived, thank, offer the coupon, ask a rating."""

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ServiceAction, buyer_id_of, text_of
from bot.domain.money import yuan
from bot.identity import buyer_from_sender
from bot.services import follow_ups

_DIGIT = re.compile(r"[1-5]")
_CHINESE = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "满": 5}


def rating_of(tracker: Tracker) -> int | None:
    value = next(tracker.get_latest_entity_values("rating"), None)
    text = str(value) if value is not None else (tracker.latest_message.get("text") or "")
    if match := _DIGIT.search(text):
        return int(match.group())
    for word, number in _CHINESE.items():
        if word + "分" in text or word + "星" in text:
            return number
    return None


class ActionFollowUp(ServiceAction):
    def name(self) -> str:
        return "action_follow_up"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        follow_up_id = next(tracker.get_latest_entity_values("follow_up_id"), None)
        buyer_id = buyer_from_sender(tracker.sender_id)  # triggered by the worker through the HTTP API
        if follow_up_id is None or buyer_id is None:
            return []
        facts = follow_ups.visit_facts(self.services, int(follow_up_id), buyer_id)
        if facts is None:
            return []
        coupon = ""
        if facts.coupon_fen:
            coupon = text_of(domain, "utter_follow_up_coupon", amount=yuan(facts.coupon_fen).replace(".00", ""),
                             min_spend=yuan(facts.coupon_min_spend_fen).replace(".00", ""))
        if facts.kind == "refund":
            dispatcher.utter_message(response="utter_follow_up_refund", amount=yuan(facts.amount_fen),
                                     items=facts.items, coupon=coupon)
            dispatcher.utter_message(response="utter_anti_scam")
        else:
            dispatcher.utter_message(response="utter_follow_up_exchange", items=facts.items, coupon=coupon)
        # Built here, not in domain.yml: Rasa would try to fill the JSON braces of the payloads.
        buttons = [{"title": f"{n}分", "payload": f'/rate{{"rating":"{n}"}}'} for n in range(1, 6)]
        buttons.append({"title": "以后不用回访我", "payload": "/opt_out_follow_up"})
        dispatcher.utter_message(response="utter_ask_rating", buttons=buttons)
        return []


class ActionRate(ServiceAction):
    def name(self) -> str:
        return "action_rate"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        rating = rating_of(tracker)
        if rating is None:
            dispatcher.utter_message(response="utter_ask_rating_number")
            return []
        text = tracker.latest_message.get("text") or ""
        follow_ups.rate(self.services, buyer_id=buyer_id_of(tracker), rating=rating,
                        comment="" if text.startswith("/") else text)
        dispatcher.utter_message(response="utter_rating_sorry" if rating <= follow_ups.LOW_RATING
                                 else "utter_rating_thanks")
        return []


class ActionOptOutFollowUp(ServiceAction):
    def name(self) -> str:
        return "action_opt_out_follow_up"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        follow_ups.opt_out(self.services, buyer_id_of(tracker))
        dispatcher.utter_message(response="utter_opted_out")
        return []
