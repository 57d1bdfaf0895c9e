"""The state machine: every (status, action, role) against the MOVES table, then each path on a real database."""

from collections import deque
from datetime import timedelta

import pytest

from bot.clock import local
from bot.domain import errors
from bot.domain.errors import Forbidden, InvalidTransition
from bot.domain.workflow import FINAL, MOVES, OPEN, Kind, Role, Status, actions_for, find_move
from bot.persistence.models import AfterSale
from bot.services import after_sales
from bot.services.after_sales import TIMER_ON_ENTRY, Actor, buyer_actor
from bot.services.queue import ledger_csv
from bot.services.timers import ON_EXPIRY, _action_for
from tests.helpers import events_of, row
from tests.workflow.support import (
    ARBITRATOR, BUYER2_DELIVERED, BUYER3_DELIVERED, CASHIER, COD_DELIVERED, COD_UNSHIPPED, COMPLETED, DELIVERED,
    FINANCE, HOME_GOODS, REASONS, REVIEWER, SUPERVISOR, outbox_of, paid_fen, payouts_of, snapshot, step, submit,
    walk,
)

# ---------------------------------------------------------------- the table itself (pure)

ACTIONS = sorted({m.action for m in MOVES})
TABLE = {(m.action, m.source): m for m in MOVES}


def test_each_action_and_source_appears_once_in_the_table():
    # given the MOVES table / then no (action, source) pair is listed twice (a duplicate would be silently shadowed)
    keys = [(m.action, m.source) for m in MOVES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", ACTIONS + ["refund_now"])
@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_find_move_answers_every_combination_as_the_table_says(status, action, role):
    move = TABLE.get((action, status))
    if move is None:
        # then an action not listed from this status is an invalid transition naming what is allowed
        with pytest.raises(InvalidTransition) as exc:
            find_move(action, status, role)
        assert exc.value.details["allowed"] == sorted(m.action for m in MOVES if m.source == status)
    elif role in move.roles:
        # then the listed role gets the move to the listed target
        found = find_move(action, status, role)
        assert (found.source, found.target, found.needs_reason) == (status, move.target, move.needs_reason)
    else:
        # then any other role is forbidden, and told which roles may
        with pytest.raises(Forbidden) as exc:
            find_move(action, status, role)
        assert exc.value.details["roles"] == sorted(r.value for r in move.roles)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_console_buttons_are_exactly_the_moves_the_role_may_take(status, role):
    expected = sorted({m.action for m in MOVES if m.source == status and role in m.roles})
    assert actions_for(status, role) == expected


def test_final_statuses_have_no_way_out_and_every_open_status_reaches_an_end():
    # given the graph of MOVES
    outgoing: dict[Status, set[Status]] = {s: set() for s in Status}
    for move in MOVES:
        outgoing[move.source].add(move.target)
    # then nothing leaves a final status
    assert all(not outgoing[s] for s in FINAL)
    # and every status is reachable from a new request, and every open one can still end
    seen, todo = {Status.REQUESTED}, deque([Status.REQUESTED])
    while todo:
        for nxt in outgoing[todo.popleft()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(Status)

    def ends(start: Status) -> bool:
        reach, queue = {start}, deque([start])
        while queue:
            for nxt in outgoing[queue.popleft()] - reach:
                reach.add(nxt)
                queue.append(nxt)
        return bool(reach & FINAL)

    assert all(ends(s) for s in OPEN)


def test_moves_that_need_a_reason_are_never_the_systems_or_the_buyers():
    # the timer engine passes no reason, and a buyer's own step never needs a staff justification
    for move in MOVES:
        if move.needs_reason:
            assert not move.roles & {Role.SYSTEM, Role.BUYER}, move


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
@pytest.mark.parametrize("status", sorted(TIMER_ON_ENTRY, key=lambda s: s.value), ids=lambda s: s.value)
def test_every_timer_a_status_starts_has_a_system_move_when_it_runs_out(status, kind):
    # given a request of `kind` whose timer started on entering `status` ran out
    deadline_kind = TIMER_ON_ENTRY[status]
    assert deadline_kind in ON_EXPIRY
    expired = AfterSale(kind=kind.value, deadline_kind=deadline_kind, status=status.value)
    # when the timer engine picks its action / then the table lets the system take it without a reason
    move = find_move(_action_for(expired), status, Role.SYSTEM)
    assert not move.needs_reason
    assert move.target != status


# ---------------------------------------------------------------- paths on a real database


def test_online_return_goes_back_by_the_original_route_and_lands_in_the_ledger(svc, clock):
    # given a quality return of a whole online order
    view = submit(svc, DELIVERED)
    assert (view.kind, view.refund_route, view.refund_fen) == ("return_refund", "original", paid_fen(svc, DELIVERED))
    views = [view]
    # when it walks approve -> ship back -> confirm receipt -> check -> supervisor pays
    for action in ("approve_return", "ship_back", "confirm_receipt", "check_online", "pay_original_route"):
        views.append(step(svc, view.id, action))
    statuses = [v.status for v in views[1:]]
    # then it passed through each status of the online chain and is refunded once, by the supervisor
    assert statuses == ["awaiting_return", "return_shipped", "checking", "awaiting_supervisor", "refunded"]
    events = events_of(svc, view.id)
    assert [e.action for e in events] == ["submit", "approve_return", "ship_back", "confirm_receipt", "check_online",
                                          "pay_original_route"]
    assert all(a.to_status == b.from_status for a, b in zip(events, events[1:]))
    done = row(svc, view.id)
    assert (done.deadline_at, done.deadline_kind, done.approved_by) == (None, None, REVIEWER.name)
    # and every step handed back the version the next caller must quote
    assert all(a.version < b.version for a, b in zip(views, views[1:]))
    assert done.version == views[-1].version
    assert done.return_tracking_no == "SF1234567890123"
    [payout] = payouts_of(svc, view.id)
    assert (payout.route, payout.amount_fen, payout.paid_by) == ("original", 22880, SUPERVISOR.name)
    assert svc.payments.calls == [f"after_sale:{view.id}:refund"]
    # and finance's refund-success ledger lists it
    today = local(clock.now()).date()
    ledger = ledger_csv(svc, today, today).splitlines()
    assert len(ledger) == 2
    assert f",{view.id},{DELIVERED},original,228.80," in ledger[1]


def test_cash_on_delivery_return_is_transferred_by_the_cashier_after_finance_confirms(svc):
    # given a quality return of a cash-on-delivery order, refunded to the buyer's Alipay
    view = submit(svc, COD_DELIVERED)
    assert (view.refund_route, view.refund_fen) == ("alipay", paid_fen(svc, COD_DELIVERED))
    # when the goods come back and reviewer -> finance -> cashier do their part
    walk(svc, view.id, "approve_return", "ship_back", "confirm_receipt")
    assert step(svc, view.id, "check_offline").status == "awaiting_finance"
    assert step(svc, view.id, "confirm_money_received").status == "awaiting_cashier"
    done = step(svc, view.id, "record_transfer")
    # then it is refunded to the account, by the cashier, once
    assert done.status == "refunded"
    [payout] = payouts_of(svc, view.id)
    assert (payout.route, payout.amount_fen, payout.paid_by) == ("alipay", 15100, CASHIER.name)
    assert [e.actor for e in events_of(svc, view.id)][-3:] == [REVIEWER.name, FINANCE.name, CASHIER.name]


def test_finance_closes_an_unshipped_cash_order_with_nothing_collected_without_a_cashier(svc):
    # given a refund of a cash-on-delivery order that never shipped: nothing was collected
    view = submit(svc, COD_UNSHIPPED, buyer_id=2, reason="other", resolution="refund")
    assert (view.kind, view.refund_route) == ("refund_only", "none")
    walk(svc, view.id, "approve_refund", "check_offline")
    before = snapshot(svc, view.id)
    # when finance closes it without saying why / then it is refused and nothing changes
    with pytest.raises(errors.ReasonRequired):
        step(svc, view.id, "close_nothing_collected", reason=" ")
    assert snapshot(svc, view.id) == before
    # when finance closes it with a reason
    closed = step(svc, view.id, "close_nothing_collected")
    # then it is closed, nothing is paid, and the buyer is told why
    assert closed.status == "closed"
    assert payouts_of(svc, view.id) == [] and svc.payments.calls == []
    notice = outbox_of(svc, view.id)[-1]
    assert (notice.kind, notice.buyer_id, notice.data["reason"]) == ("closed", 2, REASONS["close_nothing_collected"])
    assert row(svc, view.id).last_reason_note == REASONS["close_nothing_collected"]


# (order, buyer, path to the step, who rejects there)
REJECT_AT = {
    "review": (DELIVERED, 1, (), REVIEWER),
    "checking": (DELIVERED, 1, ("approve_refund",), REVIEWER),
    "awaiting_supervisor": (DELIVERED, 1, ("approve_refund", "check_online"), SUPERVISOR),
    "awaiting_finance": (COD_DELIVERED, 1, ("approve_refund", "check_offline"), FINANCE),
    "awaiting_cashier": (COD_DELIVERED, 1, ("approve_refund", "check_offline", "confirm_money_received"), CASHIER),
}


@pytest.mark.parametrize("where", list(REJECT_AT))
def test_rejection_at_each_step_needs_a_reason_stops_there_and_tells_the_buyer_why(svc, clock, where):
    # given a request waiting at `where`
    order_no, buyer, path, rejecter = REJECT_AT[where]
    view = submit(svc, order_no, buyer_id=buyer)
    if path:
        walk(svc, view.id, *path)
    source = row(svc, view.id).status
    before = snapshot(svc, view.id)
    # when the person at that step rejects without a reason / then it is refused and nothing is written
    for blank in (None, "", "   "):
        with pytest.raises(errors.ReasonRequired):
            after_sales.act(svc, view.id, "reject", actor=rejecter, reason=blank)
    assert snapshot(svc, view.id) == before
    # when they reject with a reason
    reason = f"{where}: 金额与订单不符，请核实"
    rejected = after_sales.act(svc, view.id, "reject", actor=rejecter, reason=reason)
    # then the request stops, the rejection stays on record, and the reason goes back to the buyer
    assert rejected.status == "rejected"
    stored = row(svc, view.id)
    assert stored.last_reason_note == reason
    assert stored.deadline_kind == "escalate_after_rejection"
    assert stored.deadline_at == stored.escalation_until == clock.now() + timedelta(days=3)
    last = events_of(svc, view.id)[-1]
    assert (last.action, last.actor, last.from_status, last.to_status, last.reason) == (
        "reject", rejecter.name, source, "rejected", reason)
    notice = outbox_of(svc, view.id)[-1]
    assert (notice.kind, notice.buyer_id, notice.data["reason"]) == ("rejected", buyer, reason)
    assert notice.sent_at is None and payouts_of(svc, view.id) == []


def test_refusing_the_refund_after_receipt_needs_a_reason_and_opens_the_escalation_window(svc, clock):
    # given goods shipped back
    view = submit(svc, BUYER3_DELIVERED, buyer_id=3)
    walk(svc, view.id, "approve_return", "ship_back")
    before = snapshot(svc, view.id)
    # when the reviewer refuses without a reason / then nothing changes
    with pytest.raises(errors.ReasonRequired):
        step(svc, view.id, "refuse_refund", reason="")
    assert snapshot(svc, view.id) == before
    # when the reviewer refuses with a reason
    refused = step(svc, view.id, "refuse_refund")
    # then the buyer has 3 days to escalate and is told why
    assert refused.status == "refund_refused"
    assert row(svc, view.id).escalation_until == clock.now() + timedelta(days=3)
    notice = outbox_of(svc, view.id)[-1]
    assert (notice.kind, notice.buyer_id, notice.data["reason"]) == ("refund_refused", 3, REASONS["refuse_refund"])


def test_arbitration_for_the_buyer_binds_the_seller_into_paying(svc):
    # given a rejected request the buyer escalates
    view = submit(svc, DELIVERED)
    walk(svc, view.id, "reject")
    assert step(svc, view.id, "escalate").status == "escalated"
    # when the arbitrator decides without a reason / then it is refused
    with pytest.raises(errors.ReasonRequired):
        step(svc, view.id, "arbitrate_for_buyer", reason="")
    # and a reviewer cannot decide in the arbitrator's place
    with pytest.raises(errors.Forbidden):
        after_sales.act(svc, view.id, "arbitrate_for_buyer", actor=REVIEWER, reason="我们同意退款")
    # when the arbitrator decides for the buyer
    decided = step(svc, view.id, "arbitrate_for_buyer")
    # then the refund goes into internal processing and is paid out by the original route
    assert decided.status == "checking"
    assert row(svc, view.id).last_reason_note == REASONS["arbitrate_for_buyer"]
    assert outbox_of(svc, view.id)[-1].data["reason"] == REASONS["arbitrate_for_buyer"]
    assert walk(svc, view.id, "check_online", "pay_original_route").status == "refunded"
    assert [p.amount_fen for p in payouts_of(svc, view.id)] == [paid_fen(svc, DELIVERED)]


def test_arbitration_for_the_seller_closes_the_request_and_frees_the_items(svc):
    # given a refused refund the buyer escalates
    view = submit(svc, BUYER2_DELIVERED, buyer_id=2)
    walk(svc, view.id, "approve_return", "ship_back", "refuse_refund")
    # a different buyer cannot escalate it
    with pytest.raises(errors.RequestNotFound):
        after_sales.act(svc, view.id, "escalate", actor=buyer_actor(1), buyer_id=1)
    assert step(svc, view.id, "escalate").status == "escalated"
    # when the arbitrator decides for the seller
    decided = step(svc, view.id, "arbitrate_for_seller")
    # then the request is closed, nothing is paid, the buyer hears why, and the buyer may apply again
    assert decided.status == "closed"
    assert payouts_of(svc, view.id) == []
    notice = outbox_of(svc, view.id)[-1]
    assert (notice.kind, notice.data["reason"]) == ("closed", REASONS["arbitrate_for_seller"])
    assert [e.actor for e in events_of(svc, view.id)][-1] == ARBITRATOR.name
    again = submit(svc, BUYER2_DELIVERED, buyer_id=2)
    assert again.id != view.id and again.status == "requested"


def test_the_buyer_may_cancel_while_nothing_is_paid_and_the_items_are_free_again(svc):
    # given requests of buyer 1 waiting in each status the buyer may still withdraw from, and one in checking
    waiting = {
        "requested": submit(svc, DELIVERED).id,
        "rejected": walk(svc, submit(svc, HOME_GOODS).id, "reject").id,
        "awaiting_return": walk(svc, submit(svc, COMPLETED).id, "approve_return").id,
        "refund_refused": walk(svc, submit(svc, COD_DELIVERED).id, "approve_return", "ship_back",
                               "refuse_refund").id,
    }
    checking = walk(svc, submit(svc, BUYER3_DELIVERED, buyer_id=3).id, "approve_refund").id
    for status, request_id in waiting.items():
        assert row(svc, request_id).status == status
        # when the buyer cancels it
        cancelled = step(svc, request_id, "cancel")
        # then it is cancelled, its timer stopped, by the buyer
        assert cancelled.status == "cancelled"
        stored = row(svc, request_id)
        assert (stored.deadline_at, stored.deadline_kind) == (None, None)
        assert events_of(svc, request_id)[-1].actor == "buyer:1"
    # and the items can be asked for again
    assert submit(svc, DELIVERED).status == "requested"
    # but a request already in internal processing cannot be withdrawn
    before = snapshot(svc, checking)
    with pytest.raises(errors.InvalidTransition):
        step(svc, checking, "cancel")
    assert snapshot(svc, checking) == before


def _bad_calls_at(status: str, request_id: int, version: int) -> list[tuple[str, object, type[Exception]]]:
    """(label, call, the error it must raise) for a request in `status` of buyer 1."""
    act = after_sales.act

    def call(action, actor, reason=None, **kw):
        return lambda svc: act(svc, request_id, action, actor=actor, reason=reason, **kw)

    common = [
        ("unknown action", call("refund_now", REVIEWER), errors.InvalidTransition),
        ("system-only move by staff", call("expire", REVIEWER), errors.InvalidTransition),
        ("stale version", call("approve_return", REVIEWER, expected_version=version - 1), errors.Conflict),
        ("someone else's request", call("cancel", buyer_actor(2), buyer_id=2), errors.RequestNotFound),
        ("missing request", lambda svc: act(svc, 999_999, "approve_return", actor=REVIEWER), errors.RequestNotFound),
    ]
    per_status = {
        "requested": [
            ("pay before approval", call("pay_original_route", SUPERVISOR), errors.InvalidTransition),
            ("cashier approves", call("approve_return", CASHIER), errors.Forbidden),
            ("buyer approves own request", call("approve_refund", buyer_actor(1), buyer_id=1), errors.Forbidden),
            ("reject without reason", call("reject", REVIEWER), errors.ReasonRequired),
            ("ship back before approval", lambda svc: after_sales.ship_back(
                svc, request_id, buyer_id=1, tracking_no="SF9999999999999"), errors.InvalidTransition),
            ("replacement for a refund", lambda svc: after_sales.ship_replacement(
                svc, request_id, actor=REVIEWER, courier="SF", tracking_no="SF9999999999999"),
             errors.InvalidTransition),
        ],
        "awaiting_supervisor": [
            ("reviewer pays", call("pay_original_route", REVIEWER), errors.Forbidden),
            ("approver pays as supervisor", call("pay_original_route", Actor(REVIEWER.name, Role.SUPERVISOR)),
             errors.SameActor),
            ("cashier transfers", call("record_transfer", CASHIER), errors.InvalidTransition),
            ("buyer cancels", call("cancel", buyer_actor(1), buyer_id=1), errors.InvalidTransition),
        ],
        "refunded": [
            ("pay twice", call("pay_original_route", SUPERVISOR), errors.InvalidTransition),
            ("reject after payout", call("reject", SUPERVISOR, reason="错了"), errors.InvalidTransition),
            ("buyer cancels", call("cancel", buyer_actor(1), buyer_id=1), errors.InvalidTransition),
        ],
    }
    return common + per_status[status]


def test_wrong_state_wrong_role_and_stale_calls_leave_row_events_and_money_untouched(svc):
    # given a request of buyer 1 that will pass through review, the supervisor's step and the end
    view = submit(svc, DELIVERED)
    for status, path in (("requested", ()), ("awaiting_supervisor", ("approve_refund", "check_online")),
                         ("refunded", ("pay_original_route",))):
        current = walk(svc, view.id, *path) if path else view
        assert current.status == status
        for label, bad, error in _bad_calls_at(status, view.id, current.version):
            before = snapshot(svc, view.id)
            # when a refused call is made
            with pytest.raises(error):
                bad(svc)
            # then nothing at all was written: row, events, notices, payouts, gateway calls
            assert snapshot(svc, view.id) == before, f"{status}: {label} left a trace"


# The chain must match how the money came in: online orders go back by the original route
# (reviewer -> supervisor), cash-on-delivery by the cashier's transfer; nothing collected, nothing paid.
WRONG_CHAIN = {
    "cod order through the online chain": (COD_DELIVERED, 1, "check_online"),
    "never-collected cod order through the online chain": (COD_UNSHIPPED, 2, "check_online"),
    "online order through the cash transfer chain": (DELIVERED, 1, "check_offline"),
}


@pytest.mark.parametrize("case", list(WRONG_CHAIN))
def test_a_refund_cannot_take_the_chain_of_the_other_payment_kind(svc, case):
    # given a request in checking
    order_no, buyer, wrong = WRONG_CHAIN[case]
    view = submit(svc, order_no, buyer_id=buyer, reason="other", resolution="refund")
    walk(svc, view.id, "approve_refund")
    before = snapshot(svc, view.id)
    # when the reviewer sends it down the chain of the other payment kind
    with pytest.raises(errors.DomainError):
        step(svc, view.id, wrong)
    # then it stays in checking with nothing written, and no money can go out that way
    assert snapshot(svc, view.id) == before
    assert row(svc, view.id).status == "checking"
