"""Cancelling orders, the warehouse webhook and the taobao system close, exchanges, express refunds."""

import pytest

from bot.domain import errors
from bot.domain.workflow import Role
from bot.services import after_sales
from bot.services.after_sales import Actor
from tests.helpers import DELIVERED, UNCONFIRMED, UNSHIPPED, events_of, row

REVIEWER = Actor("staff:li", Role.REVIEWER)


def test_unconfirmed_order_is_cancelled_at_once_without_a_request(svc):
    outcome, view = after_sales.cancel_order(svc, buyer_id=1, order_no=UNCONFIRMED)
    assert (outcome, view) == ("cancelled", None)
    with pytest.raises(errors.NotEligible):
        after_sales.cancel_order(svc, buyer_id=1, order_no=UNCONFIRMED)


def test_paid_unshipped_order_cancel_becomes_refund_only_request(svc):
    outcome, view = after_sales.cancel_order(svc, buyer_id=1, order_no=UNSHIPPED)
    assert outcome == "refund_requested" and view is not None
    assert (view.kind, view.status, view.refund_fen) == ("refund_only", "requested", 15900)


def test_shipped_order_cannot_be_cancelled(svc):
    with pytest.raises(errors.NotEligible):
        after_sales.cancel_order(svc, buyer_id=1, order_no=DELIVERED)


def test_warehouse_webhook_twice_changes_nothing_the_second_time(svc):
    first = after_sales.order_shipped(svc, order_no=UNSHIPPED, courier="SF", tracking_no="SF1234567890123")
    second = after_sales.order_shipped(svc, order_no=UNSHIPPED, courier="SF", tracking_no="SF1234567890123")
    assert first["changed"] is True and second["changed"] is False


def test_malformed_tracking_number_is_refused(svc):
    with pytest.raises(errors.BadTrackingNumber):
        after_sales.order_shipped(svc, order_no=UNSHIPPED, courier="SF", tracking_no="SF12")


def test_exchange_ends_with_the_replacement_shipment(svc, clock):
    view = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="size", resolution="exchange")
    after_sales.act(svc, view.id, "approve_return", actor=REVIEWER)
    after_sales.ship_back(svc, view.id, buyer_id=3, tracking_no="YT1234567890123")
    after_sales.act(svc, view.id, "confirm_receipt_exchange", actor=REVIEWER)
    with pytest.raises(errors.BadTrackingNumber):
        after_sales.ship_replacement(svc, view.id, actor=REVIEWER, courier="SF", tracking_no="YT1234567890123")
    done = after_sales.ship_replacement(svc, view.id, actor=REVIEWER, courier="SF", tracking_no="SF1234567890123")
    assert done.status == "exchanged"
    assert [e.action for e in events_of(svc, view.id)][-1] == "ship_replacement"


def test_return_tracking_number_is_checked_per_courier(svc):
    view = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="quality")
    after_sales.act(svc, view.id, "approve_return", actor=REVIEWER)
    with pytest.raises(errors.BadTrackingNumber):
        after_sales.ship_back(svc, view.id, buyer_id=3, courier="ZTO", tracking_no="SF1234567890123")
    with pytest.raises(errors.RequestNotFound):
        after_sales.ship_back(svc, view.id, buyer_id=1, tracking_no="SF1234567890123")
    shipped = after_sales.ship_back(svc, view.id, buyer_id=3, tracking_no="sf1234567890123")
    assert shipped.status == "return_shipped"
    assert row(svc, view.id).return_courier == "SF"
