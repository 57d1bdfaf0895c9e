"""Follow-up visits (回访): queued when a refund succeeds or an exchange is delivered, sent when due
(working days later), rated 1–5; a low rating opens a supervisor task. One visit per request."""

from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, local
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.workflow import Kind, Status
from bot.persistence.models import AfterSale, Buyer, FollowUp, Payout, Task
from bot.services.arrival import add_workdays
from bot.services.context import Services

if TYPE_CHECKING:
    from bot.services.after_sales import Subject

LOW_RATING = 2  # this or lower opens a task for a supervisor
VISIT_HOUR = 10  # visits go out at 10:00 China time, not in the middle of the night


def due_time(at: datetime, workdays: int) -> datetime:
    day = add_workdays(local(at).date(), workdays)
    return datetime.combine(day, time(VISIT_HOUR), SHANGHAI)


def queue_follow_up(session: Session, svc: Services, row: "Subject", at: datetime) -> None:
    """In the caller's transaction: one visit per request, unless the buyer opted out."""
    buyer = session.get(Buyer, row.buyer_id)
    if buyer is None or buyer.follow_up_opt_out:
        return
    if session.scalar(select(FollowUp.id).where(FollowUp.after_sale_id == row.id)) is not None:
        return
    policy = svc.policies(row.shop_code)
    workdays = max(int(policy.timer("follow_up_delay_workdays").days), 0)
    session.add(FollowUp(after_sale_id=row.id, buyer_id=row.buyer_id,
                         kind="exchange" if row.kind == Kind.EXCHANGE.value else "refund",
                         coupon_fen=policy.coupon_fen, due_at=due_time(at, workdays)))


@dataclass(frozen=True)
class VisitFacts:
    follow_up_id: int
    request_id: int
    kind: str
    amount_fen: int
    route: str
    coupon_fen: int
    coupon_min_spend_fen: int
    items: str


def due_visits(svc: Services, limit: int = 50) -> list[tuple[int, int]]:
    """(follow-up id, buyer id) of visits due now and not yet sent."""
    now = svc.clock.now()
    with svc.sessions() as session:
        rows = session.execute(select(FollowUp.id, FollowUp.buyer_id).where(
            FollowUp.sent_at.is_(None), FollowUp.cancelled.is_(False), FollowUp.due_at <= now)
            .order_by(FollowUp.due_at, FollowUp.id).limit(limit)).all()
        return [(r[0], r[1]) for r in rows]


def due_visits_query(now: datetime) -> Select:
    """Visits due at `now` and not sent yet, oldest first."""
    return select(FollowUp).where(FollowUp.sent_at.is_(None), FollowUp.cancelled.is_(False),
                                  FollowUp.due_at <= now).order_by(FollowUp.due_at, FollowUp.id)


def mark_sent(svc: Services, follow_up_id: int) -> None:
    with svc.sessions() as session, session.begin():
        row = session.get(FollowUp, follow_up_id)
        if row is not None and row.sent_at is None:
            row.sent_at = svc.clock.now()


def visit_facts(svc: Services, follow_up_id: int, buyer_id: int) -> VisitFacts | None:
    with svc.sessions() as session:
        row = session.get(FollowUp, follow_up_id)
        if row is None or row.buyer_id != buyer_id:
            return None
        request = session.get(AfterSale, row.after_sale_id)
        assert request is not None
        payout = session.scalar(select(Payout).where(Payout.after_sale_id == request.id))
        policy = svc.policies(request.order.shop.code)
        return VisitFacts(
            follow_up_id=row.id, request_id=request.id, kind=row.kind,
            amount_fen=payout.amount_fen if payout else request.refund_fen + request.freight_refund_fen,
            route=payout.route if payout else request.refund_route, coupon_fen=row.coupon_fen,
            coupon_min_spend_fen=policy.coupon_min_spend_fen,
            items="、".join(f"{i.order_item.name}×{i.quantity}" for i in request.items),
        )


def rate(svc: Services, *, buyer_id: int, rating: int, comment: str = "") -> FollowUp:
    """Store the buyer's rating on their most recent visit; a low one opens a supervisor task."""
    if not 1 <= rating <= 5:
        raise InvalidInput("请打1到5分", rating=rating)
    with svc.sessions() as session, session.begin():
        row = session.scalar(select(FollowUp).where(FollowUp.buyer_id == buyer_id, FollowUp.sent_at.is_not(None))
                             .order_by(FollowUp.sent_at.desc(), FollowUp.id.desc()).limit(1).with_for_update())
        if row is None:
            raise NotFound("没有需要评价的回访", buyer_id=buyer_id)
        now = svc.clock.now()
        first_rating = row.rating is None
        row.rating, row.comment, row.rated_at = rating, comment[:500] or row.comment, now
        if rating <= LOW_RATING and first_rating:
            session.add(Task(kind="low_rating", buyer_id=buyer_id, after_sale_id=row.after_sale_id, status="open",
                             created_at=now, note=f"回访评分 {rating} 分：{comment[:200]}"))
        session.flush()
        session.expunge(row)
        return row


def opt_out(svc: Services, buyer_id: int) -> int:
    """The buyer wants no more visits: pending ones are cancelled. Returns how many were cancelled."""
    with svc.sessions() as session, session.begin():
        buyer = session.get(Buyer, buyer_id)
        if buyer is None:
            raise NotFound("找不到这个买家", buyer_id=buyer_id)
        buyer.follow_up_opt_out = True
        pending = session.scalars(select(FollowUp).where(FollowUp.buyer_id == buyer_id,
                                                         FollowUp.sent_at.is_(None))).all()
        for row in pending:
            row.cancelled = True
        return len(pending)


FINAL_FOR_VISIT = frozenset({Status.REFUNDED, Status.EXCHANGED})
