"""Read side of orders for buyers: their orders, the lines, and which can take an after-sales request."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.persistence.models import Order
from bot.services.after_sales import OrderFacts, OrderLine, own_order_facts
from bot.services.context import Services

STATE_LABELS = {
    "unconfirmed": "待确认", "confirmed": "已付款待发货", "shipped": "已发货", "received": "已签收",
    "completed": "交易成功", "cancelled": "已取消",
}
AFTER_SALE_STATES = frozenset({"confirmed", "shipped", "received", "completed"})


@dataclass(frozen=True)
class OrderView:
    order_no: str
    state: str
    state_label: str
    payment: str
    paid_fen: int
    created_at: datetime
    lines: tuple[OrderLine, ...]

    @property
    def summary(self) -> str:
        first = self.lines[0].name if self.lines else ""
        count = sum(line.quantity for line in self.lines)
        return f"{first}{'等' if len(self.lines) > 1 else ''}{count}件"

    @property
    def after_sale_possible(self) -> bool:
        return self.state in AFTER_SALE_STATES

    @classmethod
    def of(cls, order: Order | OrderFacts) -> "OrderView":
        return cls(
            order_no=order.order_no, state=order.state, state_label=STATE_LABELS.get(order.state, order.state),
            payment=order.payment, paid_fen=order.paid_fen, created_at=order.created_at,
            lines=tuple(OrderLine(i.id, i.name, i.spec, i.unit_price_fen, i.quantity, i.home_goods)
                        for i in order.items),
        )


def orders_of_buyer(svc: Services, buyer_id: int) -> list[OrderView]:
    """The buyer's orders, newest first."""
    with svc.sessions() as session:
        rows = session.scalars(select(Order).where(Order.buyer_id == buyer_id).options(selectinload(Order.items))
                               .order_by(Order.created_at.desc(), Order.id.desc())).all()
        return [OrderView.of(o) for o in rows]


def order_of_buyer(svc: Services, buyer_id: int, order_no: str) -> OrderView:
    """One of the buyer's own orders (someone else's reads as unknown): one Core query on a plain connection."""
    with svc.sessions.kw["bind"].connect() as connection:
        return OrderView.of(own_order_facts(connection, buyer_id, order_no))
