"""Follow-up visits: one per request, due in working days, rated, low ratings reach a supervisor."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from bot.domain.errors import NotFound
from bot.domain.workflow import Role
from bot.persistence.models import FollowUp, Task
from bot.services import after_sales, follow_ups
from bot.services.after_sales import Actor

REVIEWER, SUPERVISOR = Actor("staff:li", Role.REVIEWER), Actor("staff:zhou", Role.SUPERVISOR)
ORDER = "202611200000000301"  # buyer 3, one 针织开衫, online


def refunded(svc) -> int:
    view = after_sales.submit(svc, buyer_id=3, order_no=ORDER, reason="quality", resolution="refund")
    for action, actor in (("approve_refund", REVIEWER), ("check_online", REVIEWER), ("pay_original_route", SUPERVISOR)):
        after_sales.act(svc, view.id, action, actor=actor)
    return view.id


def visits(svc) -> list[FollowUp]:
    with svc.sessions() as session:
        return list(session.scalars(select(FollowUp)))


def test_refund_success_queues_one_visit_a_working_day_later_at_ten(svc, clock):
    clock.set(datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc))  # Friday 10:00 in China
    request_id = refunded(svc)
    [visit] = visits(svc)
    assert visit.after_sale_id == request_id
    # Next working day after a Friday is Monday; visits go out at 10:00 China time.
    assert visit.due_at == datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    assert visit.coupon_fen == 1000


def test_visit_is_due_only_when_its_time_comes_and_is_sent_once(svc, clock):
    clock.set(datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc))
    refunded(svc)
    assert follow_ups.due_visits(svc) == []
    clock.set(datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc))
    [(visit_id, buyer_id)] = follow_ups.due_visits(svc)
    follow_ups.mark_sent(svc, visit_id)
    assert follow_ups.due_visits(svc) == []
    facts = follow_ups.visit_facts(svc, visit_id, buyer_id)
    assert facts is not None and facts.amount_fen == 19900 and facts.kind == "refund"
    assert follow_ups.visit_facts(svc, visit_id, buyer_id=1) is None  # someone else's visit


def test_low_rating_opens_one_supervisor_task(svc, clock):
    refunded(svc)
    clock.advance(days=5)
    [(visit_id, _)] = follow_ups.due_visits(svc)
    follow_ups.mark_sent(svc, visit_id)
    follow_ups.rate(svc, buyer_id=3, rating=1, comment="太慢了")
    follow_ups.rate(svc, buyer_id=3, rating=2)
    with svc.sessions() as session:
        tasks = session.scalars(select(Task).where(Task.kind == "low_rating")).all()
    assert len(tasks) == 1 and "太慢了" in tasks[0].note
    assert visits(svc)[0].rating == 2


def test_rating_without_a_visit_is_refused(svc):
    with pytest.raises(NotFound):
        follow_ups.rate(svc, buyer_id=3, rating=5)


def test_opted_out_buyer_is_not_visited(svc):
    follow_ups.opt_out(svc, 3)
    refunded(svc)
    assert visits(svc) == []
