"""The timer engine: apply every due deadline once, in small transactions that other workers skip."""

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.domain.workflow import Kind
from bot.persistence.models import AfterSale, AfterSaleItem, Order, OrderItem
from bot.services.after_sales import SYSTEM, _plan, write_changes
from bot.services.context import Services

log = logging.getLogger(__name__)

# What the system does when nobody acted in time, by the kind of deadline that ran out.
ON_EXPIRY: dict[str, str] = {
    "review": "approve",  # seller silent -> approved automatically
    "escalate_after_rejection": "expire",  # buyer did not escalate or change the request -> closed
    "ship_back": "expire",  # buyer did not ship back -> closed
    "confirm_receipt": "confirm",  # seller silent -> receipt confirmed, refund goes ahead
    "escalate_after_refusal": "expire",
}


def _action_for(row: AfterSale) -> str:
    what = ON_EXPIRY[row.deadline_kind or ""]
    if what == "approve":
        return "approve_refund" if row.kind == Kind.REFUND_ONLY.value else "approve_return"
    if what == "confirm":
        return "confirm_receipt_exchange" if row.kind == Kind.EXCHANGE.value else "confirm_receipt"
    return what


def _with_home_goods(session: Session, request_ids: list[int]) -> set[int]:
    """Which of these requests return 居家馆 goods (one query for the whole batch)."""
    if not request_ids:
        return set()
    return set(session.scalars(
        select(AfterSaleItem.after_sale_id).join(OrderItem, OrderItem.id == AfterSaleItem.order_item_id)
        .where(AfterSaleItem.after_sale_id.in_(request_ids), OrderItem.home_goods.is_(True))))


def sweep_due(svc: Services, *, batch: int = 2000) -> int:
    """Apply all deadlines due now; returns how many were applied.

    Each batch is one transaction whose rows are locked with SKIP LOCKED, so concurrent workers
    share the work and a crash loses at most an uncommitted batch, which the next sweep redoes.
    Applying a deadline moves or clears it, so a row is never applied twice. Rows come with their
    order, shop and lines in three queries, and the changes go out as a few executemany statements:
    the per-row round trips of the ORM would make a large sweep take tens of seconds.
    """
    now = svc.clock.now()
    applied = 0
    while True:
        with svc.sessions() as session, session.begin():
            rows = session.scalars(
                select(AfterSale)
                .where(AfterSale.deadline_at.is_not(None), AfterSale.deadline_at <= now)
                .order_by(AfterSale.deadline_at, AfterSale.id)
                .limit(batch)
                .options(joinedload(AfterSale.order, innerjoin=True).joinedload(Order.shop, innerjoin=True))
                .with_for_update(skip_locked=True, of=AfterSale)
            ).unique().all()
            if not rows:
                return applied
            home_goods = _with_home_goods(session, [r.id for r in rows if r.deadline_kind == "ship_back"])
            changes = []
            for row in rows:
                kind = row.deadline_kind or ""
                data: dict = {"deadline_at": row.deadline_at.isoformat() if row.deadline_at else None}
                if row.id in home_goods:
                    # 居家馆: the seller keeps a parcel that comes back without a tracking number.
                    hold = svc.policies(row.order.shop.code).timer("home_goods_hold")
                    data["home_goods_hold_until"] = (now + hold).isoformat()
                changes.append(_plan(session, svc, row, _action_for(row), SYSTEM, reason=None,
                                     rule=f"timer.{kind}.{row.preset}", data=data, now=now))
            write_changes(session, changes)
            applied += len(changes)
        log.info("applied %d due deadlines", applied)
