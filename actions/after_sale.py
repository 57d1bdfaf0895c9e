"""The after-sales application: start it from what the buyer said, fill the form, quote, submit."""

import itertools
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.common import (ServiceAction, buyer_id_of, current_services, domain_or_local, local_domain,
                            off_the_loop, shop_of)
from actions.status import status_text
from bot.clock import format_local
from bot.domain.accounts import parse_account
from bot.domain.errors import AlreadyInProgress, AmountMismatch, DomainError, NotEligible
from bot.domain.money import Pick, yuan
from bot.domain.policy import who_pays_text
from bot.domain.workflow import Kind
from bot.nlu.topics import reason_of_intent
from bot.services import after_sales
from bot.services.orders import OrderView, order_of_buyer, orders_of_buyer
from bot.services.status import open_facts_on_order

log = logging.getLogger(__name__)
T = TypeVar("T")

FORM_SLOTS = ("order_no", "picks", "reason", "reason_confidence", "buyer_words", "earlier_reasons",
              "resolution", "evidence", "refund_account", "confirmed", "invalid_attempts", "quoted_total_fen",
              "reason_changed")
MAX_INVALID = 2  # after this many unusable answers, offer buttons and a person
KIND_LABELS = {Kind.REFUND_ONLY: "仅退款", Kind.RETURN_REFUND: "退货退款", Kind.EXCHANGE: "换货"}
ROUTE_LABELS = {"original": "原路退回", "account": "退到您提供的账户", "none": "无需退款"}


def parse_picks(value: str | None) -> list[Pick] | None:
    """'all' -> None (every line); '4:1,5:2' -> picks. Raises ValueError when malformed."""
    if not value or value == "all":
        return None
    picks = []
    for part in value.split(","):
        line, _, qty = part.partition(":")
        picks.append(Pick(int(line), int(qty)))
    return picks


def evidence_ids(value: str | None) -> list[int]:
    return [int(p) for p in (value or "").removeprefix("ids:").split(",") if p.isdigit()]


def reason_from(tracker: Tracker) -> tuple[str | None, float | None]:
    intent = tracker.latest_message.get("intent") or {}
    return reason_of_intent(intent.get("name") or ""), intent.get("confidence")


# What one run of the form's validation read, by what it depends on: rasa_sdk asks for the required slots twice
# per run, each quote reads the order and its other requests, and the start, the checks and the questions read
# the buyer's orders. A domain error is kept as well, and raised again.
_read_this_run: ContextVar[dict | None] = ContextVar("read_this_run", default=None)


def _once_per_run(key: tuple, read: Callable[[], T]) -> T:
    memo = _read_this_run.get()
    if memo is None:
        return read()
    if key not in memo:
        try:
            memo[key] = read()
        except DomainError as exc:
            memo[key] = exc
    found = memo[key]
    if isinstance(found, DomainError):
        raise found
    return found


def _quote(tracker: Tracker, reason: str | None = None) -> after_sales.Quote:
    # No items chosen yet quotes every line, as "all" does: one quote for both (the form's start sees both).
    args = dict(buyer_id=buyer_id_of(tracker), order_no=tracker.get_slot("order_no"),
                reason=reason or tracker.get_slot("reason") or "other", picks=tracker.get_slot("picks") or "all",
                resolution=tracker.get_slot("resolution"))
    return _once_per_run(("quote", *args.values()), lambda: after_sales.quote(
        current_services(), **{**args, "picks": parse_picks(args["picks"])}))


def buyer_orders(tracker: Tracker) -> list[OrderView]:
    buyer_id = buyer_id_of(tracker)
    return _once_per_run(("orders", buyer_id), lambda: orders_of_buyer(current_services(), buyer_id))


def buyer_order(tracker: Tracker, order_no: str) -> OrderView:
    """One of the buyer's orders; from the buyer's orders when this run read them already."""
    buyer_id = buyer_id_of(tracker)
    memo = _read_this_run.get() or {}
    known = memo.get(("orders", buyer_id))
    if isinstance(known, list):
        found = next((o for o in known if o.order_no == order_no), None)
        if found is not None:
            return found
    return _once_per_run(("order", buyer_id, order_no), lambda: order_of_buyer(current_services(), buyer_id, order_no))


def start_application(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """The form starts: the buyer asked for a return, refund or exchange. Note the reason and the buyer's words,
    apologise, pick the order if it is clear, and forget an earlier application's answers.

    The validation does this when Rasa activates the form (one action call instead of two). Rasa hands over the
    slots already filled as the candidates to check (forms.py activate): the earlier application's are dropped
    and the fresh ones put in their place, so the form's checks run on what the buyer says now."""
    buyer_id_of(tracker)  # first: an unknown buyer hears only why nothing can be done
    reason, confidence = reason_from(tracker)
    fresh: dict[str, Any] = {slot: None for slot in FORM_SLOTS if slot != "resolution"}
    fresh["buyer_words"] = tracker.latest_message.get("text") or ""
    if reason:
        fresh.update(reason=reason, reason_confidence=confidence)
        dispatcher.utter_message(response="utter_apologise_reason", reason=reason)
    # An order number in the message wins; otherwise the only order that can take a request.
    candidates = [o for o in buyer_orders(tracker) if o.after_sale_possible]
    named = next(tracker.get_latest_entity_values("order_no"), None)
    fresh["order_no"] = named or (candidates[0].order_no if len(candidates) == 1 else None)

    handed_over = len(tracker.slots_to_validate())
    del tracker.events[len(tracker.events) - handed_over:]
    tracker.slots.update(fresh)
    tracker.events += [SlotSet(slot, fresh[slot]) for slot in ("order_no", "reason") if fresh[slot] is not None]
    return [SlotSet(slot, value) for slot, value in fresh.items()]


def ask_order_no(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """Which order: a button for each that can still take a request."""
    orders = [o for o in buyer_orders(tracker) if o.after_sale_possible]
    if not orders:
        dispatcher.utter_message(response="utter_no_eligible_order")
        return []
    buttons = [{"title": f"{o.summary} · {o.state_label} · 尾号{o.order_no[-4:]}",
                "payload": f'/inform{{"order_no":"{o.order_no}"}}'} for o in orders[:8]]
    dispatcher.utter_message(response="utter_choose_order", buttons=buttons)
    return []


def free_of_order(tracker: Tracker, order_no: str) -> dict[int, int]:
    """How many of each line of the order a new request can still take."""
    buyer_id = buyer_id_of(tracker)
    return _once_per_run(("free", buyer_id, order_no),
                         lambda: after_sales.free_quantities(current_services(), buyer_id, order_no))


def ask_picks(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """Which items of the order: a button for each line that can still take a request, and one for all of
    them. Lines that requests under way hold, or that were refunded, are named instead of offered."""
    order = buyer_order(tracker, tracker.get_slot("order_no"))
    free = free_of_order(tracker, order.order_no)  # every line of the order
    taken = [line.name for line in order.lines if free[line.id] <= 0]
    if taken:
        dispatcher.utter_message(response="utter_items_taken", items="、".join(taken))
    buttons = [{"title": f"{line.name}（{line.spec}）×{free[line.id]}",
                "payload": f'/inform{{"picks":"{line.id}:{free[line.id]}"}}'}
               for line in order.lines if free[line.id] > 0]
    buttons.append({"title": "全部商品" if not taken else "其余全部商品", "payload": '/inform{"picks":"all"}'})
    dispatcher.utter_message(response="utter_choose_items", count=len(order.lines), buttons=buttons)
    return []


def evidence_needed(quote: after_sales.Quote, tracker: Tracker) -> bool:
    """Photos when the policy asks for them, or when the buyer changed the reason after hearing who pays."""
    return quote.decision.evidence.value == "required" or bool(tracker.get_slot("earlier_reasons"))


def quote_lines(quote: after_sales.Quote) -> str:
    return "\n".join(
        f"· {line.name}（{line.spec}）×{line.quantity}" + ("" if quote.kind == Kind.EXCHANGE else f"  {yuan(line.refund_fen)}")
        for line in quote.lines
    ) + (f"\n· 运费 {yuan(quote.freight_refund_fen)}" if quote.freight_refund_fen else "")


def ask_confirmed(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """Show the computed refund item by item and who pays the freight, then ask to confirm."""
    quote = _quote(tracker)
    explanation = quote.decision.explanation
    if quote.kind == Kind.EXCHANGE:
        dispatcher.utter_message(response="utter_quote_exchange", explanation=explanation, lines=quote_lines(quote))
    else:
        dispatcher.utter_message(response="utter_quote", explanation=explanation, lines=quote_lines(quote),
                                 total=yuan(quote.total_fen), route=ROUTE_LABELS.get(quote.refund_route, ""))
    if quote.kind == Kind.EXCHANGE and quote.decision.exchange_first and not tracker.get_slot("resolution"):
        # Exchange is offered first for size, but the buyer may still choose a return.
        # Buttons built here: Rasa would try to fill the JSON braces of a payload in domain.yml.
        dispatcher.utter_message(response="utter_confirm_exchange_first", buttons=[
            {"title": "确认换货", "payload": "/affirm"},
            {"title": "改为退货退款", "payload": '/inform{"resolution":"return_refund"}'},
            {"title": "先不了", "payload": "/deny"},
        ])
    else:
        dispatcher.utter_message(response="utter_confirm_application", kind_label=KIND_LABELS[quote.kind])
    return [SlotSet("quoted_total_fen", float(quote.total_fen))]


# The form's questions that need the buyer's orders or the quote. The domain has no ask action for these
# slots, so Rasa asks nothing itself ("the user might have asked as part of a custom action", rasa/core/
# actions/forms.py): the validation, which Rasa calls before each question, asks them. One action call per
# question instead of two; the other slots are asked with plain responses (domain.yml).
ASKS: dict[str, Callable[[CollectingDispatcher, Tracker], list]] = {
    "order_no": ask_order_no, "picks": ask_picks, "confirmed": ask_confirmed}


def requested_slot_of(events: list, unset: str | None = None) -> str | None:
    """The slot the validation's events tell the form to ask for next (rasa_sdk appends it last); `unset` when
    they say nothing about it."""
    return next((e["value"] for e in reversed(events)
                 if e.get("event") == "slot" and e.get("name") == "requested_slot"), unset)


def turn_events(tracker: Tracker) -> Iterator[dict]:
    """The turn's events, newest first: those after the buyer's latest message, which every action call carries
    (bot/ops/action_history.py). Rasa puts its own ActionExecuted(form) and the slot candidates last."""
    return itertools.takewhile(lambda e: e.get("event") != "user", reversed(tracker.events))


def rasa_will_reject(tracker: Tracker, events: list) -> bool:
    """Whether Rasa will reject this run of the form, dropping whatever the validation said: the buyer answered
    the question (no other action ran since the buyer's message) and the answer filled no slot. Another rule then
    answers (who pays the freight, …) and the form asks again when it comes back. This is Rasa 3.6's test in
    FormAction.validate."""
    if not tracker.get_slot("requested_slot"):
        return False
    if any(e.get("event") == "slot" and e.get("name") != "requested_slot" for e in events):
        return False
    return [e.get("name") for e in turn_events(tracker) if e.get("event") == "action"] == [
        tracker.active_loop.get("name")]


def answer_already_requested(dispatcher: CollectingDispatcher, tracker: Tracker, exc: AlreadyInProgress) -> list:
    """The items are in a request still being worked: submitted in another turn or on another device, or by an
    action call that finished after the Rasa replica waiting for it died. Say which request and where it
    stands, instead of asking for them again."""
    facts = open_facts_on_order(current_services(), buyer_id_of(tracker), tracker.get_slot("order_no"))
    if not facts:  # someone else's request on a shared order, or it closed in between
        dispatcher.utter_message(response="utter_error_generic", message=exc.message)
        return []
    for item in facts[:3]:
        dispatcher.utter_message(response="utter_already_requested", request_id=item.request_id, items=item.items,
                                 status_text=status_text(local_domain(), item))
    return [SlotSet("request_id", float(facts[-1].request_id))]


def submit_application(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """The form is filled: create the request and say what happens next, by when (or say why not)."""
    reset = [SlotSet(slot, None) for slot in FORM_SLOTS]
    try:
        return reset + submit_or_decline(dispatcher, tracker)
    except AlreadyInProgress as exc:
        return reset + answer_already_requested(dispatcher, tracker, exc)


def submit_or_decline(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """Submit what the buyer confirmed, or say why nothing was submitted; the events besides the form's reset."""
    if tracker.get_slot("confirmed") is not True:
        # Either nothing applies (the form stopped before asking) or the buyer declined.
        quote = _quote(tracker)
        if not quote.decision.accepted:
            dispatcher.utter_message(response="utter_not_accepted", explanation=quote.decision.explanation)
        else:
            dispatcher.utter_message(response="utter_cancelled_application")
        return []
    shown = tracker.get_slot("quoted_total_fen")
    try:
        view, quote = after_sales.submit_with_quote(
            current_services(), buyer_id=buyer_id_of(tracker), order_no=tracker.get_slot("order_no"),
            reason=tracker.get_slot("reason"), picks=parse_picks(tracker.get_slot("picks")),
            resolution=tracker.get_slot("resolution"), words=tracker.get_slot("buyer_words") or "",
            confidence=tracker.get_slot("reason_confidence"), account=tracker.get_slot("refund_account"),
            # What the buyer saw and confirmed (nothing to check against when no amount was shown).
            expected_total_fen=int(shown) if shown is not None else None,
            earlier_reasons=tracker.get_slot("earlier_reasons"),
            evidence_ids=evidence_ids(tracker.get_slot("evidence")),
        )
    except AmountMismatch as exc:
        dispatcher.utter_message(response="utter_amount_changed", shown=yuan(int(shown or 0)),
                                 now=yuan(int(exc.details["expected"])))  # type: ignore[call-overload]
        return []
    except NotEligible as exc:
        if "rule" not in exc.details:  # the order itself (cancelled, too old): the generic answer
            raise
        # The shop's rules no longer accept it (they changed after the buyer confirmed).
        dispatcher.utter_message(response="utter_not_accepted", explanation=exc.message)
        return []
    hours = int(quote.review_window.total_seconds() // 3600)
    dispatcher.utter_message(
        response="utter_submitted", kind_label=KIND_LABELS[Kind(view.kind)], request_id=view.id,
        review_window=f"{hours}小时" if hours <= 72 or hours % 24 else f"{hours // 24}天",
        deadline=format_local(view.deadline_at) if view.deadline_at else "",
    )
    if quote.decision.phone_call and quote.kind == Kind.RETURN_REFUND:
        dispatcher.utter_message(response="utter_submitted_phone_call")
    if evidence_needed(quote, tracker) and not evidence_ids(tracker.get_slot("evidence")):
        dispatcher.utter_message(response="utter_submitted_evidence")
    dispatcher.utter_message(response="utter_anti_scam")
    return [SlotSet("request_id", float(view.id))]


def activated_now(tracker: Tracker) -> bool:
    """Whether Rasa activates the form in this run: its ActiveLoop event is among the turn's events (Rasa puts
    it there before validating the slots already filled, forms.py _activate_loop)."""
    return any(e.get("event") == "active_loop" and e.get("name") == tracker.active_loop.get("name")
               for e in turn_events(tracker))


def politely(step: Callable[[CollectingDispatcher, Tracker], list], dispatcher: CollectingDispatcher,
             tracker: Tracker, failed: list | None = None) -> list:
    """A step of the validation that calls the services, failing as a ServiceAction does: a domain error
    becomes its Chinese sentence, anything else an apology, and the buyer never sees a trace. `failed` are
    the events after a failure."""
    try:
        return step(dispatcher, tracker)
    except DomainError as exc:
        dispatcher.utter_message(response="utter_error_generic", message=exc.message)
    except Exception:
        log.exception("%s failed", step.__name__)
        dispatcher.utter_message(response="utter_error_backend")
    return failed or []


def form_done(events: list) -> bool:
    """Whether the validation's events end the form: rasa_sdk sets requested_slot to None when no slot is left."""
    return requested_slot_of(events, unset="") is None


def without_idle_slot_events(events: list, before: dict[str, Any], handed_over: set[str]) -> list:
    """The events without slot events that change nothing: one that a later event for the same slot replaces,
    and one that sets a slot to the value it had before this turn. A form's start set a dozen slots to None that
    were None already, and some slots twice; each event is a row in the tracker store that Rasa reads back, checks
    and replays. Kept: `requested_slot` events (Rasa reads them as the form's own instructions even when the value
    stays: ask this slot, or stop) and the slots Rasa handed over to be checked (it sets only those the
    validation returns)."""
    last = {e["name"]: i for i, e in enumerate(events) if e.get("event") == "slot"}
    kept = []
    for i, event in enumerate(events):
        name = event.get("name") if event.get("event") == "slot" else None
        if name is not None and name != "requested_slot" and name not in handed_over and (
                last[name] != i or (name in before and before[name] == event.get("value"))):
            continue
        kept.append(event)
    return kept


class ValidateAfterSaleForm(FormValidationAction):
    """Fills and checks the form's slots against the buyer's real orders."""

    def name(self) -> str:
        return "validate_after_sale_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        async def validate() -> list:
            token = _read_this_run.set({})
            # (Before the start replaces what Rasa handed over.)
            before, handed_over = dict(tracker.slots), set(tracker.slots_to_validate())
            try:
                events = self.start(dispatcher, tracker) if activated_now(tracker) else []
                events += await super(ValidateAfterSaleForm, self).run(  # type: ignore[arg-type]
                    dispatcher, tracker, domain_or_local(domain))
                events += self.ask(dispatcher, tracker, events)
                if form_done(events) and not rasa_will_reject(tracker, events):
                    events += self.submit(dispatcher, tracker)
                return without_idle_slot_events(events, before, handed_over)
            finally:
                _read_this_run.reset(token)

        return await off_the_loop(validate)

    @staticmethod
    def start(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
        """The form is being activated: a new application begins."""
        return politely(start_application, dispatcher, tracker)

    @staticmethod
    def submit(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
        """Every slot is filled (or nothing applies, or the buyer declined): the application ends here, in the
        same action call; after a failure its answers are dropped and the buyer starts again."""
        return politely(submit_application, dispatcher, tracker, failed=[SlotSet(slot, None) for slot in FORM_SLOTS])

    @staticmethod
    def ask(dispatcher: CollectingDispatcher, tracker: Tracker, events: list) -> list:
        """Ask for the next slot when it is one of ASKS (on the tracker rasa_sdk has updated with `events`)."""
        ask = ASKS.get(requested_slot_of(events) or "")
        if ask is None or rasa_will_reject(tracker, events):
            return []
        return politely(ask, dispatcher, tracker)

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> list[str]:
        slots = list(domain_slots)
        if tracker.get_slot("order_no") and tracker.get_slot("reason"):
            try:
                quote = _quote(tracker)
            except AlreadyInProgress:
                # Nothing to ask: the submit step says where the request that holds the items stands. The slots
                # filled stay required, so this turn's answer (确认) is validated and Rasa does not reject it.
                return [s for s in slots if s in ("order_no", "reason") or tracker.get_slot(s) is not None]
            except DomainError:
                return slots
            if not quote.decision.accepted:
                # Nothing to confirm: the submit step explains what applies.
                return [s for s in slots if s in ("order_no", "picks", "reason")]
            if not quote.needs_account:
                slots.remove("refund_account")
            if not evidence_needed(quote, tracker):
                slots.remove("evidence")
        else:
            slots.remove("refund_account")
            slots.remove("evidence")
        return slots

    def invalid(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str) -> dict:
        """One more unusable answer: after a few, stop repeating the question and offer a way out."""
        attempts = int(tracker.get_slot("invalid_attempts") or 0) + 1
        if attempts >= MAX_INVALID:
            dispatcher.utter_message(response="utter_invalid_again")
        return {slot: None, "invalid_attempts": float(attempts)}

    async def extract_evidence(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict:
        ids = [str(v) for v in tracker.get_latest_entity_values("evidence_id")]
        if not ids or tracker.active_loop.get("name") != "after_sale_form":
            return {}
        previous = [p for p in (tracker.get_slot("evidence") or "").removeprefix("ids:").split(",") if p.isdigit()]
        merged = list(dict.fromkeys(previous + [i for i in ids if i.isdigit()]))
        dispatcher.utter_message(response="utter_evidence_received")
        return {"evidence": "ids:" + ",".join(merged)} if merged else {}

    async def extract_picks(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict:
        """A corrected quantity ("不对，是两件") changes the line already chosen."""
        quantity = next(tracker.get_latest_entity_values("quantity"), None)
        order_no = tracker.get_slot("order_no")
        if quantity is None or not order_no or tracker.active_loop.get("name") != "after_sale_form":
            return {}
        current = tracker.get_slot("picks")
        try:
            order = buyer_order(tracker, order_no)
            picks = parse_picks(current)
        except (DomainError, ValueError):
            return {}
        if picks and len(picks) == 1:
            line_id = picks[0].line_id
        elif len(order.lines) == 1:
            line_id = order.lines[0].id
        else:
            return {}
        return {"picks": f"{line_id}:{int(float(quantity))}", "confirmed": None}

    async def extract_reason(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict:
        reason, confidence = reason_from(tracker)
        if not reason or tracker.active_loop.get("name") != "after_sale_form":
            return {}
        previous = tracker.get_slot("reason")
        result: dict[str, Any] = {"reason": reason, "reason_confidence": confidence}
        if previous and previous != reason:
            # The buyer changed the reason (maybe after hearing who pays): keep both on record.
            result["earlier_reasons"] = [*(tracker.get_slot("earlier_reasons") or []), previous]
            result["reason_changed"] = True
            result["confirmed"] = None
        return result

    # Nothing to check for these two: extract_reason sets a recognised reason only, and the domain's mapping sets
    # `confirmed` from an affirmation while the form runs. Without a validator rasa_sdk logs a warning for the
    # slot on every turn of every application.
    async def validate_reason(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict:
        return {"reason": value}

    async def validate_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict:
        return {"confirmed": value}

    async def validate_order_no(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict:
        try:
            order = buyer_order(tracker, str(value))
        except DomainError as exc:
            dispatcher.utter_message(response="utter_error_generic", message=exc.message)
            return {**self.invalid(dispatcher, tracker, "order_no"), "order_no": None}
        if not order.after_sale_possible:
            message = ("这笔订单还没确认，可以直接取消，不需要申请售后。" if order.state == "unconfirmed"
                       else f"这笔订单{order.state_label}，不能申请售后。")
            dispatcher.utter_message(response="utter_order_not_eligible", message=message)
            return {"order_no": None}
        result: dict[str, Any] = {"order_no": order.order_no, "invalid_attempts": 0.0}
        switched = tracker.get_slot("picks") is not None and not self._picks_fit(tracker.get_slot("picks"), order)
        if switched:
            # Another order: what was chosen for the first one no longer applies.
            result.update({"picks": None, "confirmed": None, "evidence": None})
        if len(order.lines) == 1:
            result["picks"] = "all"
        return result

    @staticmethod
    def _picks_fit(picks: str, order: Any) -> bool:
        try:
            chosen = parse_picks(picks)
        except ValueError:
            return False
        ids = {line.id for line in order.lines}
        return chosen is None or all(p.line_id in ids for p in chosen)

    async def validate_picks(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> dict:
        try:
            picks = parse_picks(str(value))
            order = buyer_order(tracker, tracker.get_slot("order_no"))
        except (ValueError, DomainError):
            return self.invalid(dispatcher, tracker, "picks")
        lines = {line.id: line for line in order.lines}
        for pick in picks or []:
            line = lines.get(pick.line_id)
            if line is None or pick.quantity < 1:
                return self.invalid(dispatcher, tracker, "picks")
            if pick.quantity > line.quantity:
                dispatcher.utter_message(response="utter_quantity_too_large", bought=line.quantity)
                return self.invalid(dispatcher, tracker, "picks")
        # Items a request under way holds, or that were refunded: asked again, with only what is left offered
        # (the question names the lines wholly taken).
        free = free_of_order(tracker, order.order_no) if picks else {}
        for pick in picks or []:
            left = free[pick.line_id]  # a line of the order: checked above
            if pick.quantity > left:
                if left > 0:
                    dispatcher.utter_message(response="utter_error_generic", message=(
                        f"{lines[pick.line_id].name}还可以申请{left}件，其余的已经在售后中或已经退款了。"))
                return self.invalid(dispatcher, tracker, "picks")
        return {"picks": str(value), "invalid_attempts": 0.0}

    async def validate_evidence(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict:
        text = str(value)
        if text == "later" or (text.startswith("ids:") and len(text) > 4):
            return {"evidence": text}
        return {"evidence": None}

    async def validate_refund_account(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict:
        try:
            route, ident = parse_account(str(value))
        except DomainError as exc:
            dispatcher.utter_message(response="utter_error_generic", message=exc.message)
            return self.invalid(dispatcher, tracker, "refund_account")
        return {"refund_account": f"{route}:{ident}", "invalid_attempts": 0.0}


class ActionAnswerShippingFee(ServiceAction):
    """Who pays the freight, for the reason at hand (or the general rule)."""

    def name(self) -> str:
        return "action_answer_shipping_fee"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reason = tracker.get_slot("reason")
        if not reason:
            dispatcher.utter_message(response="utter_shipping_fee_general")
            return []
        policy = self.services.policies(shop_of(tracker))
        decision = policy.decide(reason, within_no_reason_days=True)
        text = decision.explanation
        if decision.accepted and reason != "quality":
            text += f"（寄回运费由{who_pays_text(decision.return_freight)}承担）"
        dispatcher.utter_message(response="utter_shipping_fee", explanation=text)
        return []

