"""bot.services.status: what a buyer is told about their requests, read with a fixed number of queries."""

from sqlalchemy import event

from bot.domain.workflow import Role
from bot.persistence.direct import DirectConnection
from bot.services import after_sales
from bot.services.after_sales import Actor
from bot.services.status import facts_of_buyer, facts_of_request, open_facts_on_order

REVIEWER, SUPERVISOR = Actor("staff:li", Role.REVIEWER), Actor("staff:zhou", Role.SUPERVISOR)
BUYER_2 = after_sales.buyer_actor(2)


def statements(svc, monkeypatch):
    """A list that collects every statement the services run, through SQLAlchemy or straight on the driver."""
    seen: list[str] = []
    event.listen(svc.sessions.kw["bind"], "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    real = DirectConnection.execute
    monkeypatch.setattr(DirectConnection, "execute",
                        lambda self, statement, *rest: seen.append(str(statement)) or real(self, statement, *rest))
    return seen


def test_each_request_is_told_with_its_items_address_amount_and_arrival(svc):
    refunded = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                                  resolution="refund")
    for action, actor in (("approve_refund", REVIEWER), ("check_online", REVIEWER),
                          ("pay_original_route", SUPERVISOR)):
        after_sales.act(svc, refunded.id, action, actor=actor)
    open_one = after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality")

    [facts] = facts_of_buyer(svc, 3)
    assert (facts.request_id, facts.status, facts.items) == (refunded.id, "refunded", "针织开衫×1")
    assert facts.amount == "¥199.00" and facts.route == "原路退回" and facts.arrival.endswith("日")
    assert facts.address  # the shop's return address
    [other] = facts_of_buyer(svc, 2)
    assert (other.request_id, other.items, other.arrival) == (open_one.id, "羊毛大衣×1", "")
    assert facts_of_request(svc, refunded.id, 3) == facts
    assert facts_of_request(svc, refunded.id, 2) is None  # someone else's request reads as unknown


def test_the_queries_do_not_grow_with_the_requests(svc, monkeypatch):
    after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality")
    seen = statements(svc, monkeypatch)
    assert len(facts_of_buyer(svc, 2)) == 1
    one = len(seen)
    after_sales.submit(svc, buyer_id=2, order_no="202611200000000202", reason="quality")
    seen.clear()
    assert len(facts_of_buyer(svc, 2)) == 2
    assert len(seen) == one == 3  # the requests with their shops, their lines with the items, their payouts


def test_the_most_recent_requests_come_first_up_to_the_limit(svc):
    older = after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality")
    newer = after_sales.submit(svc, buyer_id=2, order_no="202611200000000202", reason="quality")
    assert [f.request_id for f in facts_of_buyer(svc, 2)] == [newer.id, older.id]
    assert [f.request_id for f in facts_of_buyer(svc, 2, limit=1)] == [newer.id]


def test_the_open_requests_on_one_order_are_the_buyers_own_still_worked_ones(svc):
    cancelled = after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality")
    after_sales.act(svc, cancelled.id, "cancel", actor=BUYER_2)
    assert open_facts_on_order(svc, 2, "202611200000000201") == []  # closed requests hold nothing
    held = after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality")
    after_sales.submit(svc, buyer_id=2, order_no="202611200000000202", reason="quality")  # another order
    [facts] = open_facts_on_order(svc, 2, "202611200000000201")
    assert (facts.request_id, facts.status, facts.items) == (held.id, "requested", "羊毛大衣×1") and facts.deadline
    assert open_facts_on_order(svc, 3, "202611200000000201") == []  # someone else's order tells nothing
