"""After-sales use cases on SQLite and PostgreSQL: quote, submit, errors, timers, payout."""

from datetime import timedelta

import pytest

from bot.domain import errors
from bot.domain.money import Pick
from bot.domain.workflow import Role
from bot.services import after_sales
from bot.services.after_sales import Actor
from bot.services.timers import sweep_due
from tests.helpers import (
    COD_DELIVERED, DELIVERED, OTHER_BUYERS, UNCONFIRMED, UNSHIPPED, events_of, item_ids, row,
)

REVIEWER = Actor("agent:li", Role.REVIEWER)
SUPERVISOR = Actor("agent:zhou", Role.SUPERVISOR)


def test_quality_return_quote_refunds_items_pro_rata_and_freight(svc):
    quote = after_sales.quote(svc, buyer_id=1, order_no=DELIVERED, reason="quality")
    assert [line.refund_fen for line in quote.lines] == [18233, 3647]
    assert quote.freight_refund_fen == 1000
    assert quote.total_fen == 22880  # everything that was paid
    assert quote.decision.return_freight == "seller"
    assert quote.kind.value == "return_refund"


def test_the_view_submit_returns_is_the_stored_request_read_back(svc):
    """submit() builds its answer from what it wrote: it must equal the request as read from the database."""
    made = [after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality", words="开线了"),
            after_sales.submit(svc, buyer_id=1, order_no=COD_DELIVERED, reason="size", resolution="return",
                               account="alipay:13812345678")]
    stored = {view.id: view for view in after_sales.requests_of_buyer(svc, 1)}
    for view in made:
        assert view == stored[view.id]
    assert len(made[0].lines) == 2 and made[1].refund_account_masked == stored[made[1].id].refund_account_masked


def test_submit_stores_request_with_72h_review_deadline_and_audit_event(svc, clock):
    view = after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality", words="开线了")
    stored = row(svc, view.id)
    assert stored.status == "requested"
    assert stored.deadline_at == clock.now() + timedelta(hours=72)
    assert stored.refund_fen + stored.freight_refund_fen == 22880
    assert stored.rule_id == "law.art24.quality"
    [event] = events_of(svc, view.id)
    assert (event.action, event.actor, event.to_status) == ("submit", "buyer:1", "requested")


def test_review_timer_approves_exactly_at_72h_not_a_second_before(svc, clock):
    view = after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality")
    clock.advance(hours=72, seconds=-1)
    assert sweep_due(svc) == 0
    assert row(svc, view.id).status == "requested"
    clock.advance(seconds=1)
    assert sweep_due(svc) == 1
    approved = row(svc, view.id)
    assert approved.status == "awaiting_return"
    assert approved.deadline_at == clock.now() + timedelta(days=7)
    assert events_of(svc, view.id)[-1].actor == "system"
    assert sweep_due(svc) == 0  # a second sweep finds nothing more to do


def test_someone_elses_order_reads_as_unknown(svc):
    with pytest.raises(errors.NotYourOrder):
        after_sales.submit(svc, buyer_id=1, order_no=OTHER_BUYERS, reason="quality")
    with pytest.raises(errors.OrderNotFound):
        after_sales.submit(svc, buyer_id=1, order_no="209999999999999999", reason="quality")


def test_quantity_above_bought_is_refused(svc):
    knit, socks = item_ids(svc, DELIVERED)
    with pytest.raises(errors.QuantityTooLarge):
        after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="size", picks=[Pick(socks, 3)])


def test_second_request_for_items_in_progress_is_refused_and_nothing_written(svc):
    knit, _ = item_ids(svc, DELIVERED)
    after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="size", picks=[Pick(knit, 1)])
    with pytest.raises(errors.AlreadyInProgress):
        after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality", picks=[Pick(knit, 1)])
    assert len(after_sales.requests_of_buyer(svc, 1)) == 1


def test_amount_that_does_not_add_up_is_refused(svc):
    with pytest.raises(errors.AmountMismatch):
        after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality", expected_total_fen=99999)


def test_unconfirmed_order_is_cancelled_not_refunded(svc):
    with pytest.raises(errors.NotEligible) as exc:
        after_sales.quote(svc, buyer_id=1, order_no=UNCONFIRMED, reason="dislike")
    assert exc.value.details["suggestion"] == "cancel_order"


def test_unshipped_order_gets_refund_only(svc):
    quote = after_sales.quote(svc, buyer_id=1, order_no=UNSHIPPED, reason="dislike", resolution="return")
    assert quote.kind.value == "refund_only"


def test_cash_on_delivery_needs_a_valid_account_shown_masked(svc):
    with pytest.raises(errors.BadAccount):
        after_sales.submit(svc, buyer_id=1, order_no=COD_DELIVERED, reason="size", resolution="return")
    with pytest.raises(errors.BadAccount):
        after_sales.submit(svc, buyer_id=1, order_no=COD_DELIVERED, reason="size", resolution="return", account="bank:6222021234567890124")
    view = after_sales.submit(svc, buyer_id=1, order_no=COD_DELIVERED, reason="size", resolution="return", account="alipay:13812345678")
    assert view.refund_route == "alipay"
    assert view.refund_account_masked == "支付宝 138****5678"


def test_two_agents_on_one_request_exactly_one_wins(svc):
    view = after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality")
    after_sales.act(svc, view.id, "approve_return", actor=REVIEWER, expected_version=view.version)
    with pytest.raises(errors.Conflict):
        after_sales.act(svc, view.id, "reject", actor=Actor("agent:wang", Role.REVIEWER), reason="不同意",
                        expected_version=view.version)
    assert [e.action for e in events_of(svc, view.id)] == ["submit", "approve_return"]


def test_rejection_needs_a_reason_and_role_is_enforced(svc):
    view = after_sales.submit(svc, buyer_id=1, order_no=DELIVERED, reason="quality")
    with pytest.raises(errors.ReasonRequired):
        after_sales.act(svc, view.id, "reject", actor=REVIEWER, reason="  ")
    with pytest.raises(errors.Forbidden):
        after_sales.act(svc, view.id, "approve_return", actor=Actor("agent:cash", Role.CASHIER))
    assert row(svc, view.id).status == "requested"


def test_online_refund_pays_once_and_not_by_the_approver(svc, clock):
    view = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="quality", resolution="refund")
    after_sales.act(svc, view.id, "approve_refund", actor=REVIEWER)
    after_sales.act(svc, view.id, "check_online", actor=REVIEWER)
    with pytest.raises(errors.Forbidden):
        after_sales.act(svc, view.id, "pay_original_route", actor=REVIEWER)
    paid = after_sales.act(svc, view.id, "pay_original_route", actor=SUPERVISOR)
    assert paid.status == "refunded"
    with pytest.raises(errors.InvalidTransition):
        after_sales.act(svc, view.id, "pay_original_route", actor=SUPERVISOR)
    assert svc.payments.calls == [f"after_sale:{view.id}:refund"]


def test_the_same_person_may_not_approve_and_pay(svc):
    view = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="quality", resolution="refund")
    boss = Actor("agent:boss", Role.SUPERVISOR)
    after_sales.act(svc, view.id, "approve_refund", actor=REVIEWER)
    after_sales.act(svc, view.id, "check_online", actor=REVIEWER)
    # The reviewer who approved now acts as supervisor under the same name: refused.
    with pytest.raises(errors.SameActor):
        after_sales.act(svc, view.id, "pay_original_route", actor=Actor("agent:li", Role.SUPERVISOR))
    assert after_sales.act(svc, view.id, "pay_original_route", actor=boss).status == "refunded"
