"""Small given/then helpers over the real database."""

from sqlalchemy import select

from bot.persistence.models import AfterSale, Event, Order, OrderItem
from bot.services.context import Services

DELIVERED = "202611200000000104"  # buyer 1: 针织开衫 + 棉袜, discount ¥20, freight ¥10
COD_DELIVERED = "202611200000000106"  # buyer 1, cash on delivery
UNCONFIRMED = "202611200000000101"
UNSHIPPED = "202611200000000102"
HOME_GOODS = "202611200000000107"
OTHER_BUYERS = "202611200000000201"  # buyer 2


def row(svc: Services, request_id: int) -> AfterSale:
    with svc.sessions() as session:
        found = session.get(AfterSale, request_id)
        assert found is not None
        return found


def events_of(svc: Services, request_id: int) -> list[Event]:
    with svc.sessions() as session:
        return list(session.scalars(select(Event).where(Event.after_sale_id == request_id).order_by(Event.id)))


def item_ids(svc: Services, order_no: str) -> list[int]:
    with svc.sessions() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        assert order is not None
        return list(session.scalars(select(OrderItem.id).where(OrderItem.order_id == order.id).order_by(OrderItem.id)))
