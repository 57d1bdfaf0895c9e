"""Timers of both presets, one second before and after each deadline; webhook close; sweeps that repeat or crash."""

from datetime import timedelta

import pytest

from bot.services import after_sales, timers
from bot.services.timers import sweep_due
from tests.helpers import events_of, row
from tests.workflow.support import (
    BUYER2_DELIVERED, BUYER3_DELIVERED, COMPLETED, DELIVERED, HOME_GOODS, SHIPPED, UNSHIPPED,
    outbox_of, submit, system_events, walk, with_preset,
)

# The rules (design/rules.md, "Timers"), written out here rather than read from PRESETS.
WINDOWS = {
    "default": {"review": timedelta(hours=72), "review_unshipped": timedelta(hours=72),
                "rejection": timedelta(days=3), "ship_back": timedelta(days=7), "home_goods_hold": timedelta(days=20),
                "confirm_receipt": timedelta(days=7), "refusal": timedelta(days=3)},
    "taobao": {"review": timedelta(days=5), "review_unshipped": timedelta(days=2),
               "rejection": timedelta(days=7), "ship_back": timedelta(days=7), "home_goods_hold": timedelta(days=20),
               "confirm_receipt": timedelta(days=10), "refusal": timedelta(days=3)},
}
SECOND = timedelta(seconds=1)


@pytest.fixture(params=["default", "taobao"])
def preset(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def shop(svc, preset):
    """The demo shop on `preset`, on the parametrised database."""
    return with_preset(svc, preset)


def expires_exactly_after(svc, clock, request_ids: list[int], window: timedelta) -> None:
    """The requests' timers started now and run `window`: nothing happens a second before, all apply a second after."""
    started = clock.now()
    before = {rid: (row(svc, rid).status, len(events_of(svc, rid))) for rid in request_ids}
    for rid in request_ids:
        assert row(svc, rid).deadline_at == started + window
    # when the sweep runs one second before the deadline / then nothing is applied
    clock.set(started + window - SECOND)
    assert sweep_due(svc) == 0
    assert {rid: (row(svc, rid).status, len(events_of(svc, rid))) for rid in request_ids} == before
    # when it runs one second after / then each deadline is applied, once
    clock.set(started + window + SECOND)
    assert sweep_due(svc) == len(request_ids)
    assert sweep_due(svc) == 0


def last_system_event(svc, request_id: int):
    events = system_events(svc, request_id)
    assert len(events) == 1, [(e.action, e.rule) for e in events]
    return events[0]


def test_seller_silent_on_a_received_order_approves_the_return(shop, clock, preset):
    # given a return requested on a received order
    view = submit(shop, DELIVERED)
    # when the review window passes
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["review"])
    # then the system approved the return and the buyer's 7 days to ship started
    stored = row(shop, view.id)
    assert (stored.status, stored.deadline_kind) == ("awaiting_return", "ship_back")
    assert stored.deadline_at == clock.now() + WINDOWS[preset]["ship_back"]
    event = last_system_event(shop, view.id)
    assert (event.action, event.rule, event.from_status) == ("approve_return", f"timer.review.{preset}", "requested")
    assert outbox_of(shop, view.id)[-1].kind == "awaiting_return"


def test_seller_silent_on_a_shipped_order_approves_the_refund(shop, clock, preset):
    # given a refund requested while the parcel is on its way
    view = submit(shop, SHIPPED, reason="dislike")
    assert view.kind == "refund_only"
    # when the (shipped) review window passes / then the refund is approved into internal processing
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["review"])
    assert row(shop, view.id).status == "checking"
    assert last_system_event(shop, view.id).action == "approve_refund"


def test_seller_silent_on_an_unshipped_order_approves_the_refund(shop, clock, preset):
    # given a refund of a paid order that has not shipped (taobao: the seller has only 2 days)
    view = submit(shop, UNSHIPPED, reason="dislike")
    assert view.kind == "refund_only"
    # when that window passes / then the refund is approved
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["review_unshipped"])
    assert row(shop, view.id).status == "checking"
    event = last_system_event(shop, view.id)
    assert (event.action, event.rule) == ("approve_refund", f"timer.review.{preset}")


def test_rejected_request_nobody_escalates_is_closed(shop, clock, preset):
    # given a rejected request
    view = submit(shop, DELIVERED)
    walk(shop, view.id, "reject")
    # when the buyer neither escalates nor changes it in time / then it is closed
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["rejection"])
    assert row(shop, view.id).status == "closed"
    event = last_system_event(shop, view.id)
    assert (event.action, event.rule) == ("expire", f"timer.escalate_after_rejection.{preset}")


def test_return_never_shipped_is_closed_and_home_goods_are_held_20_days(shop, clock, preset):
    # given two approved returns: 居家馆 bedding and ordinary clothes
    home = submit(shop, HOME_GOODS)
    clothes = submit(shop, DELIVERED)
    walk(shop, home.id, "approve_return")
    walk(shop, clothes.id, "approve_return")
    # when the buyer does not ship either back within 7 days / then both close
    expires_exactly_after(shop, clock, [home.id, clothes.id], WINDOWS[preset]["ship_back"])
    assert row(shop, home.id).status == row(shop, clothes.id).status == "closed"
    home_event, clothes_event = last_system_event(shop, home.id), last_system_event(shop, clothes.id)
    assert home_event.rule == f"timer.ship_back.{preset}"
    # and the 居家馆 parcel is kept 20 days from the close, which the audit log records; the clothes are not
    assert home_event.data["home_goods_hold_until"] == (home_event.at + WINDOWS[preset]["home_goods_hold"]).isoformat()
    assert "home_goods_hold_until" not in clothes_event.data


def test_seller_silent_after_the_buyer_shipped_confirms_receipt_and_the_refund_goes_ahead(shop, clock, preset):
    # given goods shipped back with a tracking number
    view = submit(shop, BUYER3_DELIVERED, buyer_id=3)
    walk(shop, view.id, "approve_return", "ship_back")
    # when the seller does not confirm receipt in time / then receipt is confirmed and the refund is processed
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["confirm_receipt"])
    assert row(shop, view.id).status == "checking"
    event = last_system_event(shop, view.id)
    assert (event.action, event.rule) == ("confirm_receipt", f"timer.confirm_receipt.{preset}")


def test_refused_refund_nobody_escalates_is_closed(shop, clock, preset):
    # given a refund the seller refused after receiving the goods
    view = submit(shop, BUYER2_DELIVERED, buyer_id=2)
    walk(shop, view.id, "approve_return", "ship_back", "refuse_refund")
    # when the buyer does not escalate within 3 days / then it is closed
    expires_exactly_after(shop, clock, [view.id], WINDOWS[preset]["refusal"])
    assert row(shop, view.id).status == "closed"
    assert last_system_event(shop, view.id).rule == f"timer.escalate_after_refusal.{preset}"


# ---------------------------------------------------------------- the warehouse ships during review


@pytest.mark.parametrize("preset_name, expected", [("taobao", "closed"), ("default", "requested")])
def test_order_shipped_during_review_closes_a_taobao_refund_only(svc, clock, preset_name, expected):
    # given a refund of an unshipped order
    shop = with_preset(svc, preset_name)
    view = submit(shop, UNSHIPPED, reason="dislike")
    # when the warehouse reports the parcel shipped one second before the review deadline
    clock.set(view.deadline_at - SECOND)
    result = after_sales.order_shipped(shop, order_no=UNSHIPPED, courier="SF", tracking_no="SF2026112000001")
    # then on taobao the refund closes (the trade goes on) and the buyer is told; by default it waits for review
    assert row(shop, view.id).status == expected
    if expected == "closed":
        assert result["closed_requests"] == [view.id]
        event = last_system_event(shop, view.id)
        assert (event.action, event.rule) == ("seller_shipped", "taobao.system_close.shipped_within_review")
        assert row(shop, view.id).deadline_at is None
        assert outbox_of(shop, view.id)[-1].kind == "closed"
    else:
        assert result["closed_requests"] == [] and system_events(shop, view.id) == []
    # and a repeated webhook changes nothing
    again = after_sales.order_shipped(shop, order_no=UNSHIPPED, courier="SF", tracking_no="SF2026112000001")
    assert again["changed"] is False and row(shop, view.id).status == expected


def test_order_shipped_after_the_taobao_review_window_does_not_close_the_refund(svc, clock):
    # given a taobao refund of an unshipped order whose 2-day review window has passed (the sweep not yet run)
    shop = with_preset(svc, "taobao")
    view = submit(shop, UNSHIPPED, reason="dislike")
    clock.set(view.deadline_at + SECOND)
    # when the warehouse then reports the parcel shipped
    after_sales.order_shipped(shop, order_no=UNSHIPPED, courier="SF", tracking_no="SF2026112000001")
    # then the refund is not closed: the seller shipped too late, the refund goes ahead
    assert row(shop, view.id).status != "closed"
    sweep_due(shop)
    assert row(shop, view.id).status == "checking"


# ---------------------------------------------------------------- sweeps that repeat or crash


def _five_requests_due(svc, clock) -> list[int]:
    ids = [submit(svc, order, buyer_id=buyer).id for order, buyer in (
        (DELIVERED, 1), (HOME_GOODS, 1), (COMPLETED, 1), (BUYER2_DELIVERED, 2), (BUYER3_DELIVERED, 3))]
    clock.advance(hours=72)
    return ids


def test_a_second_sweep_applies_nothing_and_writes_nothing(svc, clock):
    # given five requests whose review ran out, swept once
    ids = _five_requests_due(svc, clock)
    assert sweep_due(svc, batch=2) == 5
    counts = {rid: (len(events_of(svc, rid)), len(outbox_of(svc, rid)), row(svc, rid).version) for rid in ids}
    # when the sweep runs again / then it applies nothing and writes nothing
    assert sweep_due(svc, batch=2) == 0
    assert {rid: (len(events_of(svc, rid)), len(outbox_of(svc, rid)), row(svc, rid).version) for rid in ids} == counts
    assert all(len(system_events(svc, rid)) == 1 for rid in ids)


def test_a_sweep_that_crashes_half_way_keeps_earlier_batches_and_the_next_finishes_the_rest(svc, clock, monkeypatch):
    # given five due requests, and a sweep in batches of two whose third row fails
    ids = _five_requests_due(svc, clock)
    real_plan, calls = timers._plan, []

    def failing_plan(*args, **kwargs):
        calls.append(args[2].id)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(timers, "_plan", failing_plan)
    # when it crashes (one lane: the batches run one after the other)
    with pytest.raises(RuntimeError):
        sweep_due(svc, batch=2, lanes=1)
    # then the first batch stayed committed and the failed batch left no trace
    done = [rid for rid in ids if system_events(svc, rid)]
    assert done == calls[:2]
    assert all(row(svc, rid).status == "requested" and len(outbox_of(svc, rid)) == 0
               for rid in ids if rid not in done)
    # when the next (healthy) sweep runs
    monkeypatch.setattr(timers, "_plan", real_plan)
    # then it applies exactly the rest, and every deadline was applied once
    assert sweep_due(svc, batch=2, lanes=1) == 3
    assert [len(system_events(svc, rid)) for rid in ids] == [1] * 5
    assert [len(outbox_of(svc, rid)) for rid in ids] == [1] * 5
    assert {row(svc, rid).status for rid in ids} == {"awaiting_return"}


def test_two_lanes_of_one_sweep_share_the_batches_and_apply_each_deadline_once(svc, clock):
    # given five due requests
    ids = _five_requests_due(svc, clock)
    # when one sweep runs them in two lanes, batches of one
    assert sweep_due(svc, batch=1, lanes=2) == 5
    # then each deadline was applied once, with one notice each
    assert [len(system_events(svc, rid)) for rid in ids] == [1] * 5
    assert [len(outbox_of(svc, rid)) for rid in ids] == [1] * 5
    assert sweep_due(svc, batch=1, lanes=2) == 0
