"""Where is my refund, and notices the worker pushes into the conversation."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ServiceAction, buyer_id_of, text_of
from bot.identity import buyer_from_sender
from bot.services.status import StatusFacts, facts_of_buyer, facts_of_request


def status_text(domain: dict[str, Any], facts: StatusFacts) -> str:
    return text_of(domain, f"utter_status_{facts.status}", **facts.as_dict())


def already_told(tracker: Tracker) -> bool:
    """Whether this notice reached the conversation before (a worker that died after sending it, before
    marking it sent, sends it again; the buyer hears it once)."""
    notice = next(tracker.get_latest_entity_values("notice_id"), None)
    if notice is None:
        return False
    user_events = [e for e in tracker.events if e.get("event") == "user"]
    return any(str(ent.get("value")) == str(notice) for e in user_events[:-1]
               for ent in (e.get("parse_data") or {}).get("entities", []) if ent.get("entity") == "notice_id")


class ActionRefundStatus(ServiceAction):
    """State, who must act next, the deadline and the arrival estimate of each recent request."""

    def name(self) -> str:
        return "action_refund_status"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        facts = facts_of_buyer(self.services, buyer_id_of(tracker))
        if not facts:
            dispatcher.utter_message(response="utter_no_requests")
            return []
        for item in facts[:3]:
            dispatcher.utter_message(response="utter_request_status", request_id=item.request_id, items=item.items,
                                     status_text=status_text(domain, item))
        if any(item.status == "refunded" for item in facts[:3]):
            dispatcher.utter_message(response="utter_anti_scam")
        return []


class ActionNotifyUpdate(ServiceAction):
    """Say what changed on a request (triggered by the worker through Rasa's HTTP API)."""

    def name(self) -> str:
        return "action_notify_update"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        request_id = next(tracker.get_latest_entity_values("request_id"), None)
        if request_id is None or already_told(tracker):
            return []
        # Notices arrive only through Rasa's token-protected HTTP API, addressed by sender id.
        buyer_id = buyer_from_sender(tracker.sender_id)
        facts = facts_of_request(self.services, int(request_id), buyer_id) if buyer_id is not None else None
        if facts is None:
            return []
        dispatcher.utter_message(response="utter_update", request_id=facts.request_id,
                                 status_text=status_text(domain, facts))
        if facts.status == "refunded":
            dispatcher.utter_message(response="utter_anti_scam")
        return []
