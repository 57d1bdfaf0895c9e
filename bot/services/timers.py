"""The timer engine: apply every due deadline once, in small transactions that other workers skip."""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import Connection, select

from bot.domain.workflow import Kind
from bot.persistence.models import AfterSale, AfterSaleItem, OrderItem
from bot.services.after_sales import SUBJECT_QUERY, SYSTEM, Subject, _plan, subject_of, write_changes
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


def _action_for(row: Subject) -> str:
    what = ON_EXPIRY[row.deadline_kind or ""]
    if what == "approve":
        return "approve_refund" if row.kind == Kind.REFUND_ONLY.value else "approve_return"
    if what == "confirm":
        return "confirm_receipt_exchange" if row.kind == Kind.EXCHANGE.value else "confirm_receipt"
    return what


def _with_home_goods(db: Connection, request_ids: list[int]) -> set[int]:
    """Which of these requests return 居家馆 goods (one query for the whole batch)."""
    if not request_ids:
        return set()
    return set(db.scalars(
        select(AfterSaleItem.after_sale_id).join(OrderItem, OrderItem.id == AfterSaleItem.order_item_id)
        .where(AfterSaleItem.after_sale_id.in_(request_ids), OrderItem.home_goods.is_(True))))


def sweep_due(svc: Services, *, batch: int = 1000, lanes: int | None = None) -> int:
    """Apply all deadlines due now; returns how many were applied.

    Each batch is one transaction whose rows are locked with SKIP LOCKED, so concurrent workers
    share the work and a crash loses at most an uncommitted batch, which the next sweep redoes.
    Applying a deadline moves or clears it, so a row is never applied twice. Rows come with their
    order number and shop in one Core query (no ORM objects), the changes go out as a few executemany
    statements: per-row round trips and ORM loading would make a large sweep take tens of seconds.

    On PostgreSQL two lanes (threads with a connection each) sweep side by side, so that one plans
    its batch while the database writes the other's; SQLite has one writer at a time, so one lane.
    """
    now = svc.clock.now()
    if lanes is None:
        lanes = 2 if svc.sessions.kw["bind"].dialect.name == "postgresql" else 1
    if lanes == 1:
        return _sweep_lane(svc, now, batch)
    with ThreadPoolExecutor(lanes, thread_name_prefix="sweep") as pool:
        return sum(pool.map(lambda _: _sweep_lane(svc, now, batch), range(lanes)))


def _sweep_lane(svc: Services, now: datetime, batch: int) -> int:
    """Batches of due rows until none is left that another lane or worker has not locked."""
    applied = 0
    t = AfterSale.__table__
    due = (SUBJECT_QUERY.where(t.c.deadline_at.is_not(None), t.c.deadline_at <= now)
           .order_by(t.c.deadline_at, t.c.id).limit(batch).with_for_update(skip_locked=True, of=t))
    while True:
        with svc.sessions.kw["bind"].begin() as db:
            rows = [subject_of(r) for r in db.execute(due)]
            if not rows:
                return applied
            home_goods = _with_home_goods(db, [r.id for r in rows if r.deadline_kind == "ship_back"])
            changes = []
            for row in rows:
                kind = row.deadline_kind or ""
                data: dict = {"deadline_at": row.deadline_at.isoformat() if row.deadline_at else None}
                if row.id in home_goods:
                    # 居家馆: the seller keeps a parcel that comes back without a tracking number.
                    hold = svc.policies(row.shop_code).timer("home_goods_hold")
                    data["home_goods_hold_until"] = (now + hold).isoformat()
                changes.append(_plan(db, svc, row, _action_for(row), SYSTEM, reason=None,
                                     rule=f"timer.{kind}.{row.preset}", data=data, now=now))
            write_changes(db, changes)
            applied += len(changes)
        log.info("applied %d due deadlines", applied)
