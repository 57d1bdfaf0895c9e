"""Read side of orders for buyers: their orders, the lines, and which can take an after-sales request."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from bot.persistence.direct import in_read, keep_prepared
from bot.persistence.models import Order, OrderItem
from bot.services.after_sales import OrderFacts, OrderLine, order_lines, own_order_facts
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
        return cls.labelled(order.order_no, order.state, order.payment, order.paid_fen, order.created_at,
                            tuple(OrderLine(i.id, i.name, i.spec, i.unit_price_fen, i.quantity, i.home_goods)
                                  for i in order.items))

    @classmethod
    def labelled(cls, order_no: str, state: str, payment: str, paid_fen: int, created_at: datetime,
                 lines: tuple[OrderLine, ...]) -> "OrderView":
        """The view with its state's label for buyers."""
        return cls(order_no=order_no, state=state, state_label=STATE_LABELS.get(state, state), payment=payment,
                   paid_fen=paid_fen, created_at=created_at, lines=lines)


# The buyer's orders with their lines in one query, newest first (the chat offers them on most applications).
_ORDERS_OF_BUYER = keep_prepared(
    select(Order.order_no, Order.state, Order.payment, Order.paid_fen, Order.created_at,
           OrderItem.id.label("line_id"), OrderItem.name.label("line_name"), OrderItem.spec.label("line_spec"),
           OrderItem.unit_price_fen.label("line_unit_price_fen"), OrderItem.quantity.label("line_quantity"),
           OrderItem.home_goods.label("line_home_goods"))
    .outerjoin(OrderItem, OrderItem.order_id == Order.id)
    .where(Order.buyer_id == bindparam("buyer_id"))
    .order_by(Order.created_at.desc(), Order.id.desc(), OrderItem.id))


def orders_of_buyer(svc: Services, buyer_id: int) -> list[OrderView]:
    """The buyer's orders, newest first."""
    rows = in_read(svc.sessions.kw["bind"], lambda db: db.execute(_ORDERS_OF_BUYER, {"buyer_id": buyer_id}).all())
    orders: dict[str, list[dict]] = {}
    for row in rows:
        orders.setdefault(row["order_no"], []).append(row)
    return [OrderView.labelled(no, r[0]["state"], r[0]["payment"], r[0]["paid_fen"], r[0]["created_at"],
                               order_lines(r))
            for no, r in orders.items()]


def order_of_buyer(svc: Services, buyer_id: int, order_no: str) -> OrderView:
    """One of the buyer's own orders (someone else's reads as unknown): one Core query on the driver."""
    return OrderView.of(in_read(svc.sessions.kw["bind"], lambda db: own_order_facts(db, buyer_id, order_no)))
