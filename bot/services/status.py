"""The facts a buyer needs about a request: state, who acts next, by when, and when money arrives."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from bot.clock import format_local
from bot.domain.money import yuan
from bot.persistence.models import AfterSale, AfterSaleItem, Order, Payout
from bot.services.arrival import arrival_by
from bot.services.context import Services

ROUTE_LABELS = {"original": "原路退回", "alipay": "支付宝", "bank": "银行卡", "none": "无需退款"}


@dataclass(frozen=True)
class StatusFacts:
    request_id: int
    status: str
    items: str
    deadline: str
    note: str
    address: str
    amount: str
    route: str
    arrival: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


# What the facts read of a request, loaded with it (a request's lines, their order items, its order and shop
# had been read one lazy query at a time: most of a status answer's database time).
_WITH_FACTS = (selectinload(AfterSale.items).joinedload(AfterSaleItem.order_item),
               joinedload(AfterSale.order).joinedload(Order.shop))


def _facts(row: AfterSale, payout: Payout | None) -> StatusFacts:
    arrival = ""
    if payout is not None:
        day = arrival_by(payout.paid_at, payout.route)
        arrival = f"{day.month}月{day.day}日"
    return StatusFacts(
        request_id=row.id, status=row.status,
        items="、".join(f"{i.order_item.name}×{i.quantity}" for i in row.items),
        deadline=format_local(row.deadline_at) if row.deadline_at else "",
        note=row.last_reason_note or "", address=row.order.shop.return_address,
        amount=yuan(row.refund_fen + row.freight_refund_fen), route=ROUTE_LABELS.get(row.refund_route, ""),
        arrival=arrival,
    )


def _payouts(session, rows: list[AfterSale]) -> dict[int, Payout]:  # type: ignore[no-untyped-def]
    """Each request's payout, if it has one (one query for all of them)."""
    if not rows:
        return {}
    found = session.scalars(select(Payout).where(Payout.after_sale_id.in_([r.id for r in rows]))
                            .order_by(Payout.id)).all()
    payouts: dict[int, Payout] = {}
    for payout in found:
        payouts.setdefault(payout.after_sale_id, payout)  # the first, as a single lookup found it
    return payouts


def facts_of_buyer(svc: Services, buyer_id: int, *, limit: int = 5) -> list[StatusFacts]:
    """The buyer's most recent requests, newest first."""
    with svc.sessions() as session:
        rows = session.scalars(select(AfterSale).where(AfterSale.buyer_id == buyer_id).options(*_WITH_FACTS)
                               .order_by(AfterSale.id.desc()).limit(limit)).unique().all()
        payouts = _payouts(session, list(rows))
        return [_facts(r, payouts.get(r.id)) for r in rows]


def facts_of_request(svc: Services, request_id: int, buyer_id: int) -> StatusFacts | None:
    with svc.sessions() as session:
        row = session.get(AfterSale, request_id, options=_WITH_FACTS)
        if row is None or row.buyer_id != buyer_id:
            return None
        return _facts(row, _payouts(session, [row]).get(row.id))
