"""The demo shop: buyers with orders in every state that matters. Seeding twice adds nothing."""

from datetime import timedelta

from sqlalchemy import select

from bot.persistence.models import Buyer, Order, OrderItem, SeedMark, Shop
from bot.services.context import Services
from bot.services.staff import seed_staff

SEED_NAME = "demo-v1"

# (order_no, buyer, state, payment, discount, freight, days since received/shipped, items)
# items: (sku, name, spec, unit price fen, quantity, 居家馆)
DEMO_ORDERS: list[tuple[str, int, str, str, int, int, int, list[tuple[str, str, str, int, int, bool]]]] = [
    ("202611200000000101", 1, "unconfirmed", "online", 0, 0, 0,
     [("TS-01", "纯棉短袖T恤", "白色 M", 5900, 2, False)]),
    ("202611200000000102", 1, "confirmed", "online", 1000, 0, 0,
     [("DR-07", "碎花连衣裙", "蓝色 S", 16900, 1, False)]),
    ("202611200000000103", 1, "shipped", "online", 0, 800, 1,
     [("SH-12", "帆布鞋", "黑色 38码", 12900, 1, False)]),
    ("202611200000000104", 1, "received", "online", 2000, 1000, 2,
     [("KN-03", "针织开衫", "米白 M", 19900, 1, False), ("SK-05", "棉袜三双装", "混色 均码", 1990, 2, False)]),
    ("202611200000000105", 1, "completed", "online", 0, 0, 10,
     [("JK-21", "牛仔外套", "浅蓝 L", 25900, 1, False)]),
    ("202611200000000106", 1, "received", "cod", 0, 1200, 3,
     [("PT-08", "休闲长裤", "卡其 L", 13900, 1, False)]),
    ("202611200000000107", 1, "received", "online", 0, 0, 1,
     [("HB-01", "纯棉四件套", "灰色 1.8m", 29900, 1, True)]),
    ("202611200000000201", 2, "received", "online", 0, 0, 2,
     [("CO-02", "羊毛大衣", "驼色 XL", 59900, 1, False)]),
    ("202611200000000202", 2, "confirmed", "cod", 0, 1000, 0,
     [("BG-04", "帆布托特包", "黑色", 8900, 1, False)]),
    ("202611200000000301", 3, "received", "online", 0, 0, 1,
     [("KN-03", "针织开衫", "米白 M", 19900, 1, False)]),
]

BUYERS = [(1, "林小姐", "13800001111"), (2, "王先生", "13900002222"), (3, "张女士", "13700003333")]


def seed_demo(svc: Services) -> bool:
    """Insert the demo shop once; returns whether anything was written."""
    seed_staff(svc)  # accounts are added one by one, so a new demo role reaches old databases too
    with svc.sessions() as session, session.begin():
        if session.get(SeedMark, SEED_NAME):
            return False
        now = svc.clock.now()
        shop = Shop(code="demo", name="小林的衣橱", return_address="浙江省杭州市余杭区文一西路 100 号 小林的衣橱售后组 0571-88880000")
        session.add(shop)
        for buyer_id, name, phone in BUYERS:
            session.add(Buyer(id=buyer_id, name=name, phone=phone))
        session.flush()
        for order_no, buyer_id, state, payment, discount, freight, days, items in DEMO_ORDERS:
            goods = sum(price * qty for _, _, _, price, qty, _ in items)
            created = now - timedelta(days=days + 3)
            shipped = now - timedelta(days=days + 1) if state in ("shipped", "received", "completed") else None
            received = now - timedelta(days=days) if state in ("received", "completed") else None
            order = Order(
                order_no=order_no, shop_id=shop.id, buyer_id=buyer_id, state=state, payment=payment,
                goods_fen=goods, discount_fen=discount, freight_fen=freight, paid_fen=goods - discount + freight,
                cod_collected=payment == "cod" and received is not None, created_at=created, shipped_at=shipped,
                received_at=received, completed_at=(received + timedelta(days=7)) if state == "completed" and received else None,
                courier="SF" if shipped else None, tracking_no=f"SF{order_no[-13:]}" if shipped else None,
            )
            session.add(order)
            session.flush()
            for sku, name, spec, price, qty, home in items:
                session.add(OrderItem(order_id=order.id, sku=sku, name=name, spec=spec, unit_price_fen=price,
                                      quantity=qty, home_goods=home))
        session.add(SeedMark(name=SEED_NAME, applied_at=now))
    return True


def demo_order_numbers(svc: Services, buyer_id: int) -> list[str]:
    with svc.sessions() as session:
        return list(session.scalars(select(Order.order_no).where(Order.buyer_id == buyer_id).order_by(Order.id)))


